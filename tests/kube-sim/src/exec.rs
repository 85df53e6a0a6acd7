//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`), with a tiny
//! built-in command set instead of containers.
//!
//! Each binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error
//! (the final `Status`), 4 resize; v5 adds `[255, channel]` to close a channel. The exit is
//! reported on channel 3 as a `Status` (`Success`, or `NonZeroExitCode` with an `ExitCode`
//! cause), then the socket is closed normally.
//!
//! Commands: `echo [-n]`, `printf`, `cat` (stdin to stdout until stdin closes), `true`,
//! `false`, `hostname`, `pwd`, `env`, `sleep N`, `exit N` and `sh`/`bash -c SCRIPT` where
//! SCRIPT is commands joined by `;`, `&&`, `||` or newlines, with `>&2` to write to stderr.
//! `sh` without `-c` runs the lines it reads on stdin. Anything else fails like a missing
//! binary: a message on stderr and exit code 126.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

use crate::api::Query;
use crate::resources;
use crate::server::{Body, Shared};
use crate::status::{ApiError, Result};

/// Subprotocols served, best first.
pub const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

/// Output of a command: (channel, bytes).
type Out = mpsc::Sender<(u8, Bytes)>;

/// Starts an exec session: validates the request and answers `101 Switching Protocols`.
pub fn serve(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    ns: &str,
    pod: &str,
    q: &Query,
) -> Result<Response<Body>> {
    let res = resources::by_plural("", "v1", "pods").expect("pods are served");
    let obj = shared.store.get(res, Some(ns), pod)?;
    let container = crate::logs::pick_container(&obj, q.get("container"))?;
    let command: Vec<String> = q.all("command").into_iter().map(str::to_string).collect();
    if command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let (stdin, stdout, stderr) = (q.flag("stdin"), q.flag("stdout"), q.flag("stderr"));
    if !stdin && !stdout && !stderr {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let headers = req.headers();
    let is_ws = headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Err(ApiError::bad_request(
            "kube-sim serves exec over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) only",
        ));
    }
    let key = headers
        .get("sec-websocket-key")
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect();
    let protocol = offered
        .iter()
        .find(|p| PROTOCOLS.contains(&p.as_str()))
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no supported subprotocol offered; supported: {}",
                PROTOCOLS.join(", ")
            ))
        })?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let v5 = protocol.starts_with("v5.");
    let ctx = Context {
        pod: pod.to_string(),
        namespace: ns.to_string(),
        container,
        stdout,
        stderr,
        tty: q.flag("tty"),
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                session(ws, ctx, command, stdin, v5).await;
            }
            Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(101)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", protocol)
        .body(crate::server::full(Bytes::new()))
        .expect("valid response"))
}

#[derive(Clone, Debug)]
struct Context {
    pod: String,
    namespace: String,
    container: String,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

async fn session<S>(
    ws: WebSocketStream<S>,
    ctx: Context,
    command: Vec<String>,
    stdin_on: bool,
    v5: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(64);
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(64);
    // Reader: stdin data and close signals; the socket closing ends stdin too.
    let reader = tokio::spawn(async move {
        let mut stdin_tx = stdin_on.then_some(stdin_tx);
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(Message::Binary(data)) if !data.is_empty() => match data[0] {
                    STDIN => {
                        if let Some(tx) = &stdin_tx
                            && tx.send(data.slice(1..)).await.is_err()
                        {
                            stdin_tx = None;
                        }
                    }
                    CLOSE if v5 && data.get(1) == Some(&STDIN) => stdin_tx = None,
                    _ => {}
                },
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let command_line = command.join(" ");
    let run_ctx = ctx.clone();
    let runner = tokio::spawn(async move {
        let mut stdin = Stdin {
            rx: stdin_rx,
            pending: Vec::new(),
        };
        run(&run_ctx, &command, &mut stdin, &out_tx).await
    });
    // Writer: forward output until the command is done and its output drained.
    while let Some((ch, data)) = out_rx.recv().await {
        let ch = if ctx.tty && ch == STDERR { STDOUT } else { ch };
        let wanted = (ch == STDOUT && ctx.stdout) || (ch == STDERR && ctx.stderr);
        if !wanted {
            continue;
        }
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(ch);
        frame.extend_from_slice(&data);
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            reader.abort();
            runner.abort();
            return;
        }
    }
    let code = runner.await.unwrap_or(1);
    let status = if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{command_line}], exit code {code}"
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        })
    };
    let mut frame = vec![ERROR];
    frame.extend_from_slice(status.to_string().as_bytes());
    let _ = sink.send(Message::Binary(frame.into())).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    // Give the client a moment to answer the close, then drop the connection.
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

struct Stdin {
    rx: mpsc::Receiver<Bytes>,
    pending: Vec<u8>,
}

impl Stdin {
    /// Next chunk, or `None` at end of input.
    async fn chunk(&mut self) -> Option<Bytes> {
        if !self.pending.is_empty() {
            return Some(Bytes::from(std::mem::take(&mut self.pending)));
        }
        self.rx.recv().await
    }

    /// Next line (with its newline when there is one), or `None` at end of input.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let rest = self.pending.split_off(pos + 1);
                let line = std::mem::replace(&mut self.pending, rest);
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            match self.rx.recv().await {
                Some(b) => self.pending.extend_from_slice(&b),
                None if self.pending.is_empty() => return None,
                None => {
                    let line = std::mem::take(&mut self.pending);
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
    }
}

async fn emit(out: &Out, ch: u8, text: impl Into<Bytes>) {
    let _ = out.send((ch, text.into())).await;
}

/// Runs a command; returns its exit code.
async fn run(ctx: &Context, argv: &[String], stdin: &mut Stdin, out: &Out) -> i32 {
    let prog = argv[0].rsplit('/').next().unwrap_or_default();
    match prog {
        "sh" | "bash" | "ash" | "dash" => {
            if argv.get(1).map(String::as_str) == Some("-c") {
                let script = argv.get(2).cloned().unwrap_or_default();
                script_run(ctx, &script, stdin, out).await.1
            } else {
                let mut code = 0;
                while let Some(line) = stdin.line().await {
                    let (exit, c) = script_run(ctx, &line, stdin, out).await;
                    code = c;
                    if exit {
                        break;
                    }
                }
                code
            }
        }
        _ => simple(ctx, argv, stdin, out, STDOUT).await.1,
    }
}

/// One simple command. Returns (requested shell exit, exit code).
async fn simple(
    ctx: &Context,
    argv: &[String],
    stdin: &mut Stdin,
    out: &Out,
    to: u8,
) -> (bool, i32) {
    let prog = argv[0].rsplit('/').next().unwrap_or_default();
    let args = &argv[1..];
    match prog {
        "echo" => {
            let (newline, words) = match args.first().map(String::as_str) {
                Some("-n") => (false, &args[1..]),
                _ => (true, args),
            };
            let mut text = words.join(" ");
            if newline {
                text.push('\n');
            }
            emit(out, to, text).await;
            (false, 0)
        }
        "printf" => {
            let fmt = args.first().cloned().unwrap_or_default();
            let mut text = fmt.replace("\\n", "\n").replace("\\t", "\t");
            for a in args.iter().skip(1) {
                text = text.replacen("%s", a, 1);
            }
            emit(out, to, text).await;
            (false, 0)
        }
        "true" | ":" => (false, 0),
        "false" => (false, 1),
        "hostname" => {
            emit(out, to, format!("{}\n", ctx.pod)).await;
            (false, 0)
        }
        "pwd" => {
            emit(out, to, "/\n").await;
            (false, 0)
        }
        "env" => {
            let text = format!(
                "HOSTNAME={}\nPOD_NAMESPACE={}\nCONTAINER={}\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
                ctx.pod, ctx.namespace, ctx.container
            );
            emit(out, to, text).await;
            (false, 0)
        }
        "sleep" => {
            let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0.0);
            tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, 60.0))).await;
            (false, 0)
        }
        "exit" => (true, args.first().and_then(|s| s.parse().ok()).unwrap_or(0)),
        "cat" if args.is_empty() || args == ["-"] => {
            while let Some(chunk) = stdin.chunk().await {
                emit(out, to, chunk).await;
            }
            (false, 0)
        }
        "cat" => {
            emit(
                out,
                STDERR,
                format!("cat: {}: No such file or directory\n", args[0]),
            )
            .await;
            (false, 1)
        }
        "sh" | "bash" if args.first().map(String::as_str) == Some("-c") => {
            let script = args.get(1).cloned().unwrap_or_default();
            (
                false,
                Box::pin(script_run(ctx, &script, stdin, out)).await.1,
            )
        }
        other => {
            emit(
                out,
                STDERR,
                format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{other}\": executable file not found in $PATH: unknown\n"
                ),
            )
            .await;
            (false, 126)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    Always,
    And,
    Or,
}

/// Splits a script into words and separators, honouring quotes.
fn tokenize(script: &str) -> Vec<(Join, Vec<String>)> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut join = Join::Always;
    let mut chars = script.chars().peekable();
    let finish = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            ';' | '\n' => {
                finish(&mut words, &mut word, &mut in_word);
                out.push((join, std::mem::take(&mut words)));
                join = Join::Always;
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                finish(&mut words, &mut word, &mut in_word);
                out.push((join, std::mem::take(&mut words)));
                join = Join::And;
            }
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
                finish(&mut words, &mut word, &mut in_word);
                out.push((join, std::mem::take(&mut words)));
                join = Join::Or;
            }
            c if c.is_whitespace() => finish(&mut words, &mut word, &mut in_word),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(&mut words, &mut word, &mut in_word);
    out.push((join, words));
    out.into_iter().filter(|(_, w)| !w.is_empty()).collect()
}

/// Runs a script; returns (exit requested, last exit code).
async fn script_run(ctx: &Context, script: &str, stdin: &mut Stdin, out: &Out) -> (bool, i32) {
    let mut code = 0;
    for (join, mut words) in tokenize(script) {
        let skip = match join {
            Join::Always => false,
            Join::And => code != 0,
            Join::Or => code == 0,
        };
        if skip {
            continue;
        }
        let mut to = STDOUT;
        words.retain(|w| {
            if w == ">&2" || w == "1>&2" {
                to = STDERR;
                false
            } else {
                true
            }
        });
        for w in &mut words {
            if w == "$?" {
                *w = code.to_string();
            }
        }
        if words.is_empty() {
            continue;
        }
        let (exit, c) = simple(ctx, &words, stdin, out, to).await;
        code = c;
        if exit {
            return (true, code);
        }
    }
    (false, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_scripts() {
        let t = tokenize("echo 'a b' \"c\\\"d\"; exit 3 && false || echo x >&2");
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].1, vec!["echo", "a b", "c\"d"]);
        assert_eq!(
            t[1],
            (Join::Always, vec!["exit".to_string(), "3".to_string()])
        );
        assert_eq!(t[2].0, Join::And);
        assert_eq!(
            t[3],
            (Join::Or, vec!["echo".into(), "x".into(), ">&2".into()])
        );
    }

    #[tokio::test]
    async fn runs_commands() {
        let ctx = Context {
            pod: "p".into(),
            namespace: "n".into(),
            container: "c".into(),
            stdout: true,
            stderr: true,
            tty: false,
        };
        let (tx, mut rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::channel(4);
        in_tx.send(Bytes::from_static(b"hello\n")).await.unwrap();
        drop(in_tx);
        let mut stdin = Stdin {
            rx: in_rx,
            pending: Vec::new(),
        };
        let argv = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            run(
                &ctx,
                &argv(&["sh", "-c", "echo hi; exit 3"]),
                &mut stdin,
                &tx
            )
            .await,
            3
        );
        assert_eq!(rx.recv().await.unwrap(), (STDOUT, Bytes::from("hi\n")));
        assert_eq!(run(&ctx, &argv(&["cat"]), &mut stdin, &tx).await, 0);
        assert_eq!(rx.recv().await.unwrap(), (STDOUT, Bytes::from("hello\n")));
        assert_eq!(run(&ctx, &argv(&["nope"]), &mut stdin, &tx).await, 126);
        assert_eq!(rx.recv().await.unwrap().0, STDERR);
    }
}
