use super::*;

fn ctx() -> Context {
    Context {
        pod: "p".into(),
        namespace: "n".into(),
        container: "c".into(),
        files: Arc::new(Mutex::new(Tree::new("p"))),
    }
}

fn argv(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

fn input(chunks: &[&[u8]]) -> Stdin {
    let (tx, rx) = mpsc::channel(chunks.len().max(1));
    for c in chunks {
        tx.try_send(Bytes::copy_from_slice(c)).unwrap();
    }
    Stdin::new(rx)
}

/// Runs and collects (exit code, stdout, stderr).
async fn run_collect(ctx: &Context, args: &[&str], stdin: &mut Stdin) -> (i32, Vec<u8>, String) {
    let (tx, mut rx) = mpsc::channel(1024);
    let code = run(ctx, &argv(args), stdin, &tx).await;
    drop(tx);
    let (mut o, mut e) = (Vec::new(), Vec::new());
    while let Some((ch, d)) = rx.recv().await {
        if ch == STDOUT {
            o.extend_from_slice(&d)
        } else {
            e.extend_from_slice(&d)
        }
    }
    (code, o, String::from_utf8_lossy(&e).into_owned())
}

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
    let ctx = ctx();
    let mut stdin = input(&[b"hello\n"]);
    assert_eq!(
        run_collect(&ctx, &["sh", "-c", "echo hi; exit 3"], &mut stdin).await,
        (3, b"hi\n".to_vec(), String::new())
    );
    assert_eq!(run_collect(&ctx, &["cat"], &mut stdin).await.1, b"hello\n");
    let (code, _, err) = run_collect(&ctx, &["nope"], &mut stdin).await;
    assert_eq!(code, 126);
    assert!(err.contains("executable file not found"), "{err}");
}

#[tokio::test]
async fn checksums_and_counts_stdin() {
    let ctx = ctx();
    let (code, out, _) = run_collect(&ctx, &["sha256sum"], &mut input(&[b"ab", b"c"])).await;
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n"
    );
    let (_, out, _) = run_collect(&ctx, &["wc", "-c"], &mut input(&[b"12345"])).await;
    assert_eq!(out, b"5\n");
}

#[tokio::test]
async fn tar_and_test_do_what_kubectl_cp_needs() {
    let ctx = ctx();
    ctx.tree().mkdir("/data/sub", true).unwrap();
    ctx.tree()
        .write("/data/sub/f.txt", Bytes::from_static(b"content"), 0o644)
        .unwrap();
    assert_eq!(
        run_collect(&ctx, &["test", "-d", "/data"], &mut Stdin::closed())
            .await
            .0,
        0
    );
    assert_eq!(
        run_collect(
            &ctx,
            &["test", "-d", "/data/sub/f.txt"],
            &mut Stdin::closed()
        )
        .await
        .0,
        1
    );

    // From the pod: `tar cf - /data`.
    let (code, archive, err) =
        run_collect(&ctx, &["tar", "cf", "-", "/data"], &mut Stdin::closed()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "tar: Removing leading `/' from member names\n");
    // To the pod: `tar -xmf - -C /tmp`.
    let (code, _, err) = run_collect(
        &ctx,
        &[
            "tar",
            "--no-same-permissions",
            "--no-same-owner",
            "-xmf",
            "-",
            "-C",
            "/tmp",
        ],
        &mut input(&[&archive]),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        run_collect(&ctx, &["cat", "/tmp/data/sub/f.txt"], &mut Stdin::closed())
            .await
            .1,
        b"content"
    );
    let (code, _, err) = run_collect(
        &ctx,
        &["tar", "xf", "-", "-C", "/missing"],
        &mut input(&[&archive]),
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        err.starts_with("tar: /missing: Cannot open: No such file or directory"),
        "{err}"
    );
    let (code, _, err) =
        run_collect(&ctx, &["tar", "cf", "-", "/nope"], &mut Stdin::closed()).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("tar: /nope: Cannot stat: No such file or directory"),
        "{err}"
    );
    let (code, out, _) = run_collect(&ctx, &["ls", "/tmp/data"], &mut Stdin::closed()).await;
    assert_eq!((code, out), (0, b"sub\n".to_vec()));
}
