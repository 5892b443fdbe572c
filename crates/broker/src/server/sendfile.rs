//! `send_file`: copies a file range to a socket inside the kernel (Linux `sendfile(2)`), driven by
//! tokio's readiness so a slow client parks the task instead of blocking a thread.

// One libc call with checked arguments; see the SAFETY note.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Sends `len` bytes of `file` from `offset` to `stream`.
pub(crate) async fn send_file(
    stream: &TcpStream,
    file: &File,
    offset: u64,
    len: u64,
) -> io::Result<()> {
    let mut off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::other("file offset too large"))?;
    let mut left = len;
    let sock = stream.as_raw_fd();
    let fd = file.as_raw_fd();
    while left > 0 {
        stream.writable().await?;
        let chunk = left.min(1 << 30) as usize;
        let r = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call (`stream` and `file`
            // are borrowed), `off` is a valid `off_t` the kernel advances, and `chunk` is a plain
            // count. sendfile writes nothing into our memory besides `off`.
            let n = unsafe { libc::sendfile(sock, fd, &mut off, chunk) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match r {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than the range sent",
                ))
            }
            Ok(n) => left -= n.min(left),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
