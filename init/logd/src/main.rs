//! cirrus-logd: the log daemon (see the library for what it collects and keeps).
//!
//! ```text
//! cirrus-logd [--run-dir DIR] [--syslog PATH|none] [--kmsg PATH|none] [--log-dir DIR]
//!             [--ring-kib N] [--max-file-kib N] [--keep N]
//! ```
//! Defaults: `/run/cirrus`, `/dev/log`, `/dev/kmsg`, `/data/log`, 256 KiB, 1024 KiB, 3 old files.
//! A single-threaded poll loop; it tells init it is ready (sd_notify) once its sockets exist.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cirrus_logd::store::{Ring, RotatingLog};
use cirrus_logd::{Entry, INPUT_SOCKET, Query, READER_SOCKET, entry::now_us};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

struct Options {
    run_dir: PathBuf,
    syslog: Option<PathBuf>,
    kmsg: Option<PathBuf>,
    log_dir: PathBuf,
    ring_bytes: usize,
    max_file_bytes: u64,
    keep: u32,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        run_dir: PathBuf::from("/run/cirrus"),
        syslog: Some(PathBuf::from("/dev/log")),
        kmsg: Some(PathBuf::from("/dev/kmsg")),
        log_dir: PathBuf::from("/data/log"),
        ring_bytes: 256 << 10,
        max_file_bytes: 1 << 20,
        keep: 3,
    };
    let optional = |v: &str| (v != "none").then(|| PathBuf::from(v));
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("`{arg}` needs a value"));
        match arg.as_str() {
            "--run-dir" => o.run_dir = PathBuf::from(value()?),
            "--syslog" => o.syslog = optional(value()?),
            "--kmsg" => o.kmsg = optional(value()?),
            "--log-dir" => o.log_dir = PathBuf::from(value()?),
            "--ring-kib" => o.ring_bytes = value()?.parse::<usize>().context("--ring-kib")? << 10,
            "--max-file-kib" => {
                o.max_file_bytes = value()?.parse::<u64>().context("--max-file-kib")? << 10
            }
            "--keep" => o.keep = value()?.parse().context("--keep")?,
            other => anyhow::bail!("unknown argument `{other}`"),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    cirrus_logging::init("cirrus-logd");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_options(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bind_datagram(path: &Path, mode: u32) -> anyhow::Result<UnixDatagram> {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let socket =
        UnixDatagram::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    socket.set_nonblocking(true)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(socket)
}

/// A reader: waiting for its request, or following.
struct Reader {
    stream: UnixStream,
    buf: Vec<u8>,
    query: Option<Query>,
}

enum Token {
    Input,
    Syslog,
    Kmsg,
    Listener,
    Reader(usize),
}

struct Logd {
    ring: Ring,
    file: Option<RotatingLog>,
    file_failed: bool,
    readers: Vec<Reader>,
}

impl Logd {
    fn add(&mut self, entry: Entry) {
        if let Some(file) = &mut self.file {
            match file.append(&entry) {
                Ok(()) => self.file_failed = false,
                Err(e) if !self.file_failed => {
                    tracing::warn!("cannot write {}: {e}", file.path().display());
                    self.file_failed = true;
                }
                Err(_) => {}
            }
        }
        let line = format!("{}\n", entry.to_line());
        self.readers.retain_mut(|r| match &r.query {
            Some(q) if q.matches(&entry) => {
                matches!(r.stream.write(line.as_bytes()), Ok(n) if n == line.len())
            }
            _ => true,
        });
        self.ring.push(entry);
    }
}

fn run(o: Options) -> anyhow::Result<()> {
    let input = bind_datagram(&o.run_dir.join(INPUT_SOCKET), 0o600)?;
    let syslog = match &o.syslog {
        Some(path) => match bind_datagram(path, 0o666) {
            Ok(socket) => {
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::PassCred, &true)?;
                Some(socket)
            }
            Err(e) => {
                tracing::warn!("no syslog: {e:#}");
                None
            }
        },
        None => None,
    };
    let mut kmsg = match &o.kmsg {
        Some(path) => match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => Some(file),
            Err(e) => {
                tracing::warn!("no kernel log ({}: {e})", path.display());
                None
            }
        },
        None => None,
    };
    let reader_path = o.run_dir.join(READER_SOCKET);
    let _ = std::fs::remove_file(&reader_path);
    let listener = UnixListener::bind(&reader_path)
        .with_context(|| format!("cannot bind {}", reader_path.display()))?;
    listener.set_nonblocking(true)?;
    std::fs::set_permissions(&reader_path, std::fs::Permissions::from_mode(0o600))?;
    let file = match RotatingLog::open(&o.log_dir, o.max_file_bytes, o.keep) {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!("no persistent log in {}: {e}", o.log_dir.display());
            None
        }
    };
    let mut logd = Logd {
        ring: Ring::new(o.ring_bytes),
        file,
        file_failed: false,
        readers: Vec::new(),
    };
    tracing::info!(
        "logging to {} (ring {} KiB, files {} KiB × {})",
        o.log_dir.display(),
        o.ring_bytes >> 10,
        o.max_file_bytes >> 10,
        o.keep + 1
    );
    cirrus_logging::readiness::notify("READY=1");

    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut tokens = vec![Token::Input, Token::Listener];
        let mut fds = vec![
            PollFd::new(input.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(s) = &syslog {
            tokens.push(Token::Syslog);
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if let Some(k) = &kmsg {
            tokens.push(Token::Kmsg);
            fds.push(PollFd::new(k.as_fd(), PollFlags::POLLIN));
        }
        for (i, r) in logd.readers.iter().enumerate() {
            tokens.push(Token::Reader(i));
            fds.push(PollFd::new(r.stream.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => anyhow::bail!("poll: {e}"),
        }
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        let mut closed = Vec::new();
        for i in ready {
            match tokens[i] {
                Token::Input => {
                    for _ in 0..256 {
                        match input.recv(&mut buf) {
                            Ok(n) => {
                                if let Some(entry) = Entry::from_service(&buf[..n], now_us()) {
                                    logd.add(entry);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Token::Syslog => {
                    if let Some(s) = &syslog {
                        for _ in 0..256 {
                            match recv_with_pid(s, &mut buf) {
                                Ok((n, pid)) => {
                                    logd.add(Entry::from_syslog(&buf[..n], pid, now_us()))
                                }
                                Err(_) => break,
                            }
                        }
                    }
                }
                Token::Kmsg => {
                    if let Some(k) = &mut kmsg {
                        for _ in 0..256 {
                            match k.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if let Some(entry) = Entry::from_kmsg(&buf[..n], now_us()) {
                                        logd.add(entry);
                                    }
                                }
                                // Records overwritten before we read them: go on with the next.
                                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                                Err(_) => break,
                            }
                        }
                    }
                }
                Token::Listener => {
                    while let Ok((stream, _)) = listener.accept() {
                        if stream.set_nonblocking(true).is_ok() {
                            logd.readers.push(Reader {
                                stream,
                                buf: Vec::new(),
                                query: None,
                            });
                        }
                    }
                }
                Token::Reader(j) => {
                    if handle_reader(&mut logd, j) {
                        closed.push(j);
                    }
                }
            }
        }
        for j in closed.into_iter().rev() {
            if j < logd.readers.len() {
                logd.readers.remove(j);
            }
        }
        if let Some(file) = &mut logd.file {
            file.flush();
        }
    }
}

/// Reads from reader `j`; true when the connection is done with.
fn handle_reader(logd: &mut Logd, j: usize) -> bool {
    let Some(reader) = logd.readers.get_mut(j) else {
        return false;
    };
    let mut chunk = [0u8; 512];
    match reader.stream.read(&mut chunk) {
        Ok(0) => return true,
        Ok(n) if reader.query.is_none() => reader.buf.extend_from_slice(&chunk[..n]),
        Ok(_) => return false,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
            return false;
        }
        Err(_) => return true,
    }
    let Some(end) = reader.buf.iter().position(|&b| b == b'\n') else {
        return reader.buf.len() > 4096;
    };
    let line = String::from_utf8_lossy(&reader.buf[..end]).into_owned();
    let query = match Query::parse(&line) {
        Ok(q) => q,
        Err(e) => {
            let _ = reader.stream.write_all(format!("error: {e}\n").as_bytes());
            return true;
        }
    };
    let mut dump = String::new();
    for entry in logd.ring.iter().filter(|e| query.matches(e)) {
        dump.push_str(&entry.to_line());
        dump.push('\n');
    }
    let stream = &mut reader.stream;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let written = stream.write_all(dump.as_bytes()).is_ok();
    if !written || !query.follow {
        return true;
    }
    let _ = stream.set_nonblocking(true);
    reader.query = Some(query);
    false
}

/// `recvmsg` with the sender's pid from SCM_CREDENTIALS.
fn recv_with_pid(socket: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<(usize, Option<i32>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!(libc::ucred);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    let mut pid = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmCredentials(cred) = cmsg {
                pid = Some(cred.pid());
            }
        }
    }
    Ok((msg.bytes, pid))
}
