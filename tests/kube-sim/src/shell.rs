//! The built-in commands exec runs instead of container processes, shared by every transport
//! (WebSocket and SPDY) and by attach.
//!
//! Commands: `echo [-n]`, `printf`, `cat [FILE…]` (stdin to stdout until stdin closes when no
//! file is named), `true`, `false`, `hostname`, `pwd`, `env`, `sleep N`, `exit N`, file commands
//! on the container's in-memory tree ([`crate::files`]): `test -d|-f|-e PATH`, `ls [PATH]`,
//! `mkdir [-p]`, `rm [-rf]`, `touch`, `tar` (create `c` to stdout, extract `x` from stdin,
//! `-C DIR`; what `kubectl cp` runs), `sha256sum` and `wc -c` (of a file or stdin); and
//! `sh`/`bash -c SCRIPT` where SCRIPT is commands joined by `;`, `&&`, `||` or newlines, with
//! `>&2` to write to stderr. `sh` without `-c` runs the lines it reads on stdin. No pipes or
//! file redirection. Anything else fails like a missing binary: a message on stderr and exit
//! code 126.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::files::{self, Tree};

/// Channel numbers of the output (as in the `channel.k8s.io` protocols).
pub const STDOUT: u8 = 1;
/// Standard error.
pub const STDERR: u8 = 2;

/// Output of a command: (channel, bytes).
pub type Out = mpsc::Sender<(u8, Bytes)>;

/// Where a command runs.
#[derive(Clone, Debug)]
pub struct Context {
    /// Pod name (the hostname).
    pub pod: String,
    /// Namespace.
    pub namespace: String,
    /// Container name.
    pub container: String,
    /// The container's files.
    pub files: Arc<Mutex<Tree>>,
}

impl Context {
    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Standard input of a command: chunks until the client closes stdin.
#[derive(Debug)]
pub struct Stdin {
    rx: mpsc::Receiver<Bytes>,
    pending: Vec<u8>,
}

impl Stdin {
    /// Input read from `rx`; a closed or dropped sender is end of input.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self {
            rx,
            pending: Vec::new(),
        }
    }

    /// Input that has already ended.
    pub fn closed() -> Self {
        Self::new(mpsc::channel(1).1)
    }
}

impl Stdin {
    /// Next chunk, or `None` at end of input.
    pub async fn chunk(&mut self) -> Option<Bytes> {
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
pub async fn run(ctx: &Context, argv: &[String], stdin: &mut Stdin, out: &Out) -> i32 {
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
            let mut code = 0;
            for a in args {
                let read = ctx.tree().read(a);
                match read {
                    Ok(data) => emit(out, to, data).await,
                    Err(e) => {
                        emit(out, STDERR, format!("cat: {e}\n")).await;
                        code = 1;
                    }
                }
            }
            (false, code)
        }
        "test" | "[" => {
            let args: Vec<&str> = args
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "]")
                .collect();
            let t = ctx.tree();
            let ok = match args.as_slice() {
                ["-d", p] => t.is_dir(p),
                ["-f", p] => matches!(t.get(p), Some(files::Entry::File { .. })),
                ["-e", p] => t.get(p).is_some(),
                ["-n", s] => !s.is_empty(),
                ["-z", s] => s.is_empty(),
                [a, "=", b] => a == b,
                [a, "!=", b] => a != b,
                [s] => !s.is_empty(),
                _ => false,
            };
            (false, i32::from(!ok))
        }
        "ls" => {
            let mut paths: Vec<&str> = args
                .iter()
                .map(String::as_str)
                .filter(|a| !a.starts_with('-'))
                .collect();
            if paths.is_empty() {
                paths.push("/");
            }
            let mut text = String::new();
            let mut code = 0;
            for p in paths {
                let listing = {
                    let t = ctx.tree();
                    match t.get(p) {
                        Some(files::Entry::File { .. }) => Some(format!("{p}\n")),
                        Some(files::Entry::Dir { .. }) => Some(
                            t.list(p)
                                .unwrap_or_default()
                                .into_iter()
                                .map(|n| format!("{n}\n"))
                                .collect(),
                        ),
                        None => None,
                    }
                };
                match listing {
                    Some(l) => text.push_str(&l),
                    None => {
                        emit(
                            out,
                            STDERR,
                            format!("ls: cannot access '{p}': No such file or directory\n"),
                        )
                        .await;
                        code = 2;
                    }
                }
            }
            emit(out, to, text).await;
            (false, code)
        }
        "mkdir" | "rm" | "touch" => {
            let flags: String = args
                .iter()
                .filter(|a| a.starts_with('-'))
                .flat_map(|a| a.chars().skip(1))
                .collect();
            let mut code = 0;
            for p in args.iter().filter(|a| !a.starts_with('-')) {
                let result = {
                    let mut t = ctx.tree();
                    match prog {
                        "mkdir" => t.mkdir(p, flags.contains('p')),
                        "touch" if t.get(p).is_some() => Ok(()),
                        "touch" => t.write(p, Bytes::new(), 0o644),
                        _ => match t.remove(p, flags.contains('r') || flags.contains('R')) {
                            Err(files::Error::NotFound(_)) if flags.contains('f') => Ok(()),
                            r => r,
                        },
                    }
                };
                if let Err(e) = result {
                    let e = match (prog, e) {
                        ("mkdir", e) => {
                            format!("mkdir: cannot create directory '{p}': {}", strip(&e, p))
                        }
                        ("rm", files::Error::IsDir(_)) => {
                            format!("rm: cannot remove '{p}': Is a directory")
                        }
                        (_, e) => format!("{prog}: cannot remove '{p}': {}", strip(&e, p)),
                    };
                    emit(out, STDERR, format!("{e}\n")).await;
                    code = 1;
                }
            }
            (false, code)
        }
        "tar" => tar(ctx, args, stdin, out).await,
        "sha256sum" | "wc" => {
            let files: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            let (data, name) = match files.first() {
                None => (read_all(stdin).await, None),
                Some(f) if f.as_str() == "-" => (read_all(stdin).await, None),
                Some(f) => {
                    let read = ctx.tree().read(f);
                    match read {
                        Ok(d) => (d.to_vec(), Some(f.to_string())),
                        Err(e) => {
                            emit(out, STDERR, format!("{prog}: {e}\n")).await;
                            return (false, 1);
                        }
                    }
                }
            };
            let text = if prog == "wc" {
                match name {
                    Some(n) => format!("{} {n}\n", data.len()),
                    None => format!("{}\n", data.len()),
                }
            } else {
                let hash = sha2::Sha256::digest(&data);
                let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                format!("{hex}  {}\n", name.as_deref().unwrap_or("-"))
            };
            emit(out, to, text).await;
            (false, 0)
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

/// An error's text without the path it starts with (coreutils put the path elsewhere).
fn strip(e: &files::Error, path: &str) -> String {
    let text = e.to_string();
    text.strip_prefix(&format!("{path}: "))
        .map(str::to_string)
        .unwrap_or(text)
}

async fn read_all(stdin: &mut Stdin) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(chunk) = stdin.chunk().await {
        data.extend_from_slice(&chunk);
    }
    data
}

/// GNU tar's `c` (to stdout) and `x` (from stdin), `f -` only, with `-C DIR`. Options are
/// accepted bundled without a dash (`cf`) or with (`-xmf`); `m`, `v`, `o`, `p` and the
/// `--no-same-*` options change nothing here.
async fn tar(ctx: &Context, args: &[String], stdin: &mut Stdin, out: &Out) -> (bool, i32) {
    let mut mode = None;
    let mut dir = "/".to_string();
    let mut paths = Vec::new();
    let mut file = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a.starts_with("--") {
            continue;
        }
        let bundle = if i == 1 && !a.starts_with('-') {
            Some(a.as_str())
        } else {
            a.strip_prefix('-')
        };
        match bundle {
            Some(flags) if !flags.is_empty() => {
                for f in flags.chars() {
                    match f {
                        'c' | 'x' | 't' => mode = Some(f),
                        'f' => {
                            file = args.get(i).cloned();
                            i += 1;
                        }
                        'C' => {
                            if let Some(d) = args.get(i) {
                                dir = d.clone();
                            }
                            i += 1;
                        }
                        _ => {}
                    }
                }
            }
            _ => paths.push(a.clone()),
        }
    }
    if file.as_deref().is_some_and(|f| f != "-") {
        emit(
            out,
            STDERR,
            "tar: kube-sim only reads and writes archives on stdin/stdout (f -)\n",
        )
        .await;
        return (false, 2);
    }
    match mode {
        Some('c') => {
            if paths.is_empty() {
                emit(out, STDERR, "tar: Cowardly refusing to create an empty archive\nTry 'tar --help' or 'tar --usage' for more information.\n").await;
                return (false, 2);
            }
            let paths: Vec<String> = paths
                .iter()
                .map(|p| {
                    if p.starts_with('/') {
                        p.clone()
                    } else {
                        format!("{dir}/{p}")
                    }
                })
                .collect();
            if paths.iter().any(|p| p.starts_with('/')) && args.iter().any(|a| a.starts_with('/')) {
                emit(out, STDERR, "tar: Removing leading `/' from member names\n").await;
            }
            let (archive, errors) = ctx.tree().tar(&paths);
            for chunk in archive.chunks(64 * 1024) {
                emit(out, STDOUT, Bytes::copy_from_slice(chunk)).await;
            }
            if errors.is_empty() {
                return (false, 0);
            }
            for e in &errors {
                emit(
                    out,
                    STDERR,
                    format!(
                        "tar: {}\n",
                        e.to_string().replace(": No such", ": Cannot stat: No such")
                    ),
                )
                .await;
            }
            emit(
                out,
                STDERR,
                "tar: Exiting with failure status due to previous errors\n",
            )
            .await;
            (false, 2)
        }
        Some('x') => {
            let data = read_all(stdin).await;
            let result = ctx.tree().untar(&data, &dir);
            match result {
                Ok(_) => (false, 0),
                Err(files::Error::NotFound(d)) if d == dir => {
                    emit(out, STDERR, format!("tar: {dir}: Cannot open: No such file or directory\ntar: Error is not recoverable: exiting now\n")).await;
                    (false, 2)
                }
                Err(e) => {
                    emit(
                        out,
                        STDERR,
                        format!(
                            "tar: {e}\ntar: Exiting with failure status due to previous errors\n"
                        ),
                    )
                    .await;
                    (false, 2)
                }
            }
        }
        _ => {
            emit(out, STDERR, "tar: You must specify one of the '-Acdtrux', '--delete' or '--test-label' options\nTry 'tar --help' or 'tar --usage' for more information.\n").await;
            (false, 2)
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
mod tests;
