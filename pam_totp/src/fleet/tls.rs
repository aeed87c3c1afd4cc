//! TLS for `rediss://` (placeholder until the backend is in).

use super::config::Tls;
use super::resp::Stream;
use super::FleetError;
use std::net::TcpStream;
use std::time::Instant;

pub fn connect(
    _tcp: TcpStream,
    _tls: &Tls,
    _deadline: Instant,
) -> Result<Box<dyn Stream>, FleetError> {
    Err(FleetError::Tls("not available in this build".into()))
}
