//! Micro-benchmarks of the pure logic: code generation, verification at
//! window 3 and 21, and a secret file's parse + write; and what keying HMAC
//! once per verification (`otp::HotpKey`) saves over keying per code.
//! Figures and the command that reproduces them are in BENCHMARKS.md.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pam_totp::otp::{hotp, time_step, HotpKey, Secret};
use pam_totp::policy::{check_attempt, Options};
use pam_totp::secret_file::SecretFile;

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

/// The codes of Google's clock-skew search range (±1,499 steps, 2,999
/// codes) keyed per code, as `otp::hotp` does, against keyed once
/// (`otp::HotpKey`) with the keyed state cloned per code.
fn keying(c: &mut Criterion) {
    let secret = Secret::from_base32(SECRET.as_bytes()).unwrap();
    let first = time_step(NOW, 30) - 1499;
    let last = first + 2998;
    c.bench_function("keying/2,999 codes, keyed per code (otp::hotp)", |b| {
        b.iter(|| {
            (first..=last)
                .map(|counter| hotp(black_box(&secret), counter))
                .fold(0u32, |acc, code| acc ^ code)
        })
    });
    c.bench_function("keying/2,999 codes, keyed once (otp::HotpKey)", |b| {
        b.iter(|| {
            let key = HotpKey::new(black_box(&secret));
            (first..=last)
                .map(|counter| key.code(counter))
                .fold(0u32, |acc, code| acc ^ code)
        })
    });
}

criterion_group!(benches, generation, verification, file_format, keying);
criterion_main!(benches);
