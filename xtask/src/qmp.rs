//! A small QMP (QEMU Machine Protocol) client: std's `UnixStream` + serde_json.
//!
//! QMP is JSON objects, one per line. The server greets with `{"QMP": {...}}`; the client must send
//! `qmp_capabilities` before anything else; each command gets either `{"return": …}` or
//! `{"error": {"class", "desc"}}`, echoing the command's `id`. Asynchronous events
//! (`{"event": …}`) can arrive at any time, also between a command and its reply: they are kept in
//! [`Qmp::events`].

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

/// A connected QMP session (greeting read, capabilities negotiated).
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    /// How long to wait for a reply.
    pub timeout: Duration,
    /// Events received so far, oldest first.
    pub events: Vec<Value>,
    /// The server's greeting (`{"QMP": {"version": …, "capabilities": …}}`).
    pub greeting: Value,
}

impl Qmp {
    /// Connects to QEMU's QMP socket at `path`, retrying until `deadline` while QEMU creates it.
    /// `still_running` is asked between tries so a QEMU that died is not waited for.
    pub fn connect_retrying(
        path: &Path,
        deadline: Instant,
        mut still_running: impl FnMut() -> Result<()>,
    ) -> Result<Qmp> {
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => return Qmp::handshake(stream, Duration::from_secs(30)),
                Err(err) if Instant::now() >= deadline => {
                    return Err(err).with_context(|| {
                        format!("could not connect to QMP at {}", path.display())
                    });
                }
                Err(_) => {
                    still_running()?;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Reads the greeting and negotiates capabilities on an already connected stream.
    pub fn handshake(stream: UnixStream, timeout: Duration) -> Result<Qmp> {
        let writer = stream.try_clone().context("cloning the QMP socket")?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
            timeout,
            events: Vec::new(),
            greeting: Value::Null,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let msg = qmp.read_message(deadline)?;
            if msg.get("QMP").is_some() {
                qmp.greeting = msg;
                break;
            }
            if msg.get("event").is_some() {
                qmp.events.push(msg);
                continue;
            }
            bail!("QMP server did not greet, it sent: {msg}");
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// Runs one command and returns its `return` value; a QMP error becomes an `Err` with its text.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = serde_json::to_vec(&request)?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .with_context(|| format!("sending QMP command {command}"))?;

        let deadline = Instant::now() + self.timeout;
        loop {
            let msg = self
                .read_message(deadline)
                .with_context(|| format!("waiting for the reply to {command}"))?;
            if msg.get("event").is_some() {
                self.events.push(msg);
                continue;
            }
            if msg
                .get("id")
                .and_then(Value::as_u64)
                .is_some_and(|got| got != id)
            {
                // A late reply to an earlier command that timed out: not ours.
                continue;
            }
            if let Some(ret) = msg.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = msg.get("error") {
                let class = err.get("class").and_then(Value::as_str).unwrap_or("?");
                let desc = err.get("desc").and_then(Value::as_str).unwrap_or("?");
                bail!("QMP command {command} failed: {desc} ({class})");
            }
            bail!("unexpected QMP message in reply to {command}: {msg}");
        }
    }

    /// Saves the current display to `ppm` (QEMU writes a binary PPM, P6).
    pub fn screendump(&mut self, ppm: &Path) -> Result<()> {
        let filename = ppm.to_str().context("screendump path is not UTF-8")?;
        self.execute("screendump", Some(json!({ "filename": filename })))?;
        Ok(())
    }

    /// Presses keys together (QEMU qcodes, e.g. `["ctrl", "alt", "delete"]`) and releases them.
    pub fn send_key(&mut self, qcodes: &[&str]) -> Result<()> {
        let keys: Vec<Value> = qcodes
            .iter()
            .map(|k| json!({ "type": "qcode", "data": k }))
            .collect();
        self.execute("send-key", Some(json!({ "keys": keys })))?;
        Ok(())
    }

    /// The events received so far, as `NAME` or `NAME(reason)` (e.g. `SHUTDOWN(guest-reset)`).
    pub fn event_names(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| {
                let name = e.get("event").and_then(Value::as_str)?;
                Some(
                    match e
                        .get("data")
                        .and_then(|d| d.get("reason"))
                        .and_then(Value::as_str)
                    {
                        Some(reason) => format!("{name}({reason})"),
                        None => name.to_owned(),
                    },
                )
            })
            .collect()
    }

    /// Reads the events still buffered (e.g. after QEMU exited) until the connection closes or
    /// `timeout` passes.
    pub fn drain_events(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Ok(msg) = self.read_message(deadline) {
            if msg.get("event").is_some() {
                self.events.push(msg);
            }
        }
    }

    fn read_message(&mut self, deadline: Instant) -> Result<Value> {
        let mut line = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("QMP: no answer within {:?}", self.timeout);
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
            // read_until keeps what it read before a timeout in `line`, so a message split across
            // several writes is reassembled.
            match self.reader.read_until(b'\n', &mut line) {
                Ok(0) => bail!("QMP: QEMU closed the connection"),
                Ok(_) if line.ends_with(b"\n") => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim();
                    if text.is_empty() {
                        line.clear();
                        continue;
                    }
                    return serde_json::from_str(text)
                        .map_err(|e| anyhow!("QMP: invalid JSON from QEMU ({e}): {text}"));
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e).context("reading from QMP"),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::Read;
    use std::thread;

    use super::*;

    /// A fake QEMU on the other end of a socket pair: reads one request per scripted step and answers
    /// with the step's raw bytes (written in small pieces, to exercise reassembly).
    fn fake_qemu(
        script: Vec<(Option<&'static str>, String)>,
    ) -> (UnixStream, thread::JoinHandle<Vec<Value>>) {
        let (client, server) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || {
            let mut reader = BufReader::new(server.try_clone().unwrap());
            let mut server = server;
            let mut requests = Vec::new();
            for (expect, answer) in script {
                if let Some(expect) = expect {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let req: Value = serde_json::from_str(&line).unwrap();
                    assert_eq!(req["execute"], expect, "request {req}");
                    requests.push(req);
                }
                for chunk in answer.as_bytes().chunks(7) {
                    server.write_all(chunk).unwrap();
                    server.flush().unwrap();
                    thread::sleep(Duration::from_millis(1));
                }
            }
            // Drain until the client hangs up.
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            requests
        });
        (client, handle)
    }

    const GREETING: &str = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n";

    #[test]
    fn handshake_commands_and_interleaved_events() {
        let (client, server) = fake_qemu(vec![
            (None, GREETING.to_owned()),
            (Some("qmp_capabilities"), "{\"return\": {}, \"id\": 1}\r\n".to_owned()),
            (
                Some("screendump"),
                // An event arrives before the reply, and a blank line for good measure.
                "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESET\", \"data\": {\"guest\": true}}\r\n\r\n{\"return\": {}, \"id\": 2}\r\n".to_owned(),
            ),
            (Some("send-key"), "{\"return\": {}, \"id\": 3}\r\n{\"event\": \"SHUTDOWN\", \"data\": {}}\r\n".to_owned()),
            (Some("query-status"), "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 4}\r\n".to_owned()),
            (None, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-reset\"}}\r\n".to_owned()),
        ]);
        let mut qmp = Qmp::handshake(client, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.greeting["QMP"]["version"]["qemu"]["major"], 7);
        qmp.screendump(Path::new("/tmp/x.ppm")).unwrap();
        assert_eq!(qmp.event_names(), ["RESET"]);
        qmp.send_key(&["ctrl", "alt", "delete"]).unwrap();
        // The SHUTDOWN event after the send-key reply is picked up with the next command.
        let status = qmp.execute("query-status", None).unwrap();
        assert_eq!(status["status"], "running");
        assert_eq!(qmp.event_names(), ["RESET", "SHUTDOWN"]);
        // Events left in the socket (QEMU exits right after them) are still read.
        qmp.drain_events(Duration::from_millis(300));
        assert_eq!(
            qmp.event_names(),
            ["RESET", "SHUTDOWN", "SHUTDOWN(guest-reset)"]
        );
        drop(qmp);

        let requests = server.join().unwrap();
        assert_eq!(requests[1]["arguments"]["filename"], "/tmp/x.ppm");
        assert_eq!(
            requests[2]["arguments"]["keys"],
            json!([{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"alt"},{"type":"qcode","data":"delete"}])
        );
        let ids: Vec<_> = requests.iter().map(|r| r["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
    }

    #[test]
    fn qmp_errors_become_errors() {
        let (client, _server) = fake_qemu(vec![
            (None, GREETING.to_owned()),
            (
                Some("qmp_capabilities"),
                "{\"return\": {}, \"id\": 1}\n".to_owned(),
            ),
            (
                Some("screendump"),
                "{\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": \"no surface\"}}\n"
                    .to_owned(),
            ),
        ]);
        let mut qmp = Qmp::handshake(client, Duration::from_secs(5)).unwrap();
        let err = qmp.screendump(Path::new("/tmp/x.ppm")).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("no surface") && text.contains("GenericError"),
            "{text}"
        );
    }

    #[test]
    fn silence_times_out_and_hangup_is_reported() {
        let (client, server) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let err = Qmp::handshake(client, Duration::from_millis(200))
            .err()
            .expect("no greeting must fail");
        assert!(format!("{err:#}").contains("no answer"), "{err:#}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(server);

        let (client, server) = UnixStream::pair().unwrap();
        drop(server);
        let err = Qmp::handshake(client, Duration::from_secs(5))
            .err()
            .expect("hang-up must fail");
        assert!(format!("{err:#}").contains("closed"), "{err:#}");
    }

    #[test]
    fn garbage_instead_of_greeting_is_an_error() {
        let (client, _server) = fake_qemu(vec![(None, "{\"return\": {}}\n".to_owned())]);
        let err = Qmp::handshake(client, Duration::from_secs(5))
            .err()
            .expect("must fail");
        assert!(format!("{err:#}").contains("did not greet"), "{err:#}");
    }
}
