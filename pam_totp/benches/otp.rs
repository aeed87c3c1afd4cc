//! Micro-benchmarks of the pure logic: code generation, verification at
//! window 3 and 21, and a secret file's parse + write; and the HMAC keying
//! that the clock-skew search could save (BENCHMARKS.md, problem 2).
//! Figures and the command that reproduces them are in BENCHMARKS.md.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use pam_totp::otp::{hotp, time_step, Secret};
use pam_totp::policy::{check_attempt, Options};
use pam_totp::secret_file::SecretFile;
use sha1::Sha1;

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const NOW: u64 = 1_700_000_015;
const FILE: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 1699999990 1699999995\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 56666665\n\" TOTP_AUTH\n11111111\n22222222\n33333333\n44444444\n55555555\n";

fn generation(c: &mut Criterion) {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    c.bench_function("hotp/one code", |b| {
        b.iter(|| hotp(black_box(&secret), black_box(56_666_667)))
    });
}

fn verification(c: &mut Criterion) {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    let no_skew = Options {
        learn_skew: false,
        ..Options::default()
    };
    for window in [3u32, 21] {
        let text = format!("{SECRET}\n\" TOTP_AUTH\n\" WINDOW_SIZE {window}\n");
        let file = SecretFile::parse(text.as_bytes()).unwrap();
        // The code at the far edge of the window: the worst case for a hit.
        let edge = time_step(NOW, 30) + u64::from(window / 2);
        let good = format!("{:06}", hotp(&secret, edge));
        c.bench_function(&format!("verify/window {window}/valid"), |b| {
            b.iter(|| {
                let mut f = file.clone();
                check_attempt(&mut f, black_box(good.as_bytes()), NOW, &no_skew)
            })
        });
        c.bench_function(&format!("verify/window {window}/wrong"), |b| {
            b.iter(|| {
                let mut f = file.clone();
                check_attempt(&mut f, black_box(b"000000"), NOW, &no_skew)
            })
        });
    }
    // A wrong code with skew learning on searches 25 hours each way.
    let file = SecretFile::parse(format!("{SECRET}\n\" TOTP_AUTH\n").as_bytes()).unwrap();
    c.bench_function("verify/window 3/wrong, skew search", |b| {
        b.iter(|| {
            let mut f = file.clone();
            check_attempt(&mut f, black_box(b"000000"), NOW, &Options::default())
        })
    });
}

fn file_format(c: &mut Criterion) {
    c.bench_function("secret file/parse + write", |b| {
        b.iter(|| {
            SecretFile::parse(black_box(FILE.as_bytes()))
                .unwrap()
                .to_bytes()
        })
    });
}

/// The skew search's 6,001 codes as `otp::hotp` computes them, a new HMAC
/// key set-up for each, against keying once and cloning the keyed state
/// for each code: the inner and outer key blocks are the same for all.
fn keying(c: &mut Criterion) {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    let truncate = |digest: &[u8]| {
        let offset = usize::from(digest[19] & 0x0f);
        u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]) % 1_000_000
    };
    let first = time_step(NOW, 30) - 3000;
    let keyed_once = |keyed: &Hmac<Sha1>, counter: u64| {
        let mut mac = keyed.clone();
        mac.update(&counter.to_be_bytes());
        truncate(&mac.finalize().into_bytes())
    };
    // Both ways must give the same codes, or the comparison means nothing.
    let keyed = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    for counter in first..first + 100 {
        assert_eq!(keyed_once(&keyed, counter), hotp(&secret, counter));
    }
    c.bench_function("keying/6,001 codes, keyed per code (otp::hotp)", |b| {
        b.iter(|| {
            (first..=first + 6000)
                .map(|counter| hotp(black_box(&secret), counter))
                .fold(0u32, |acc, code| acc ^ code)
        })
    });
    c.bench_function("keying/6,001 codes, keyed once", |b| {
        b.iter(|| {
            let keyed = <Hmac<Sha1> as Mac>::new_from_slice(black_box(secret.as_bytes())).unwrap();
            (first..=first + 6000)
                .map(|counter| keyed_once(&keyed, counter))
                .fold(0u32, |acc, code| acc ^ code)
        })
    });
}

criterion_group!(benches, generation, verification, file_format, keying);
criterion_main!(benches);
