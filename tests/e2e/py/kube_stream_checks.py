"""Drives the Python `kubernetes` client's streaming calls (`stream()` for exec, `portforward()`)
against a pod and prints what happened as JSON. Reads the cluster from $KUBECONFIG; the
arguments are the namespace, the pod and an HTTP port of the pod."""

import json
import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream


def main():
    ns, pod, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config.load_kube_config()
    core = client.CoreV1Api()
    report = {}

    # One-shot exec: stdout and stderr come back together as a string.
    report["exec"] = stream(
        core.connect_get_namespaced_pod_exec, pod, ns,
        command=["sh", "-c", "echo out; echo err >&2"],
        stderr=True, stdin=False, stdout=True, tty=False,
    )

    # Interactive exec: write stdin, read stdout, then the exit code from the error channel.
    ws = stream(
        core.connect_get_namespaced_pod_exec, pod, ns,
        command=["cat"], stderr=True, stdin=True, stdout=True, tty=False,
        _preload_content=False,
    )
    payload = "line %d\n"
    sent = "".join(payload % i for i in range(200))
    ws.write_stdin(sent)
    echoed = ""
    while len(echoed) < len(sent) and ws.is_open():
        ws.update(timeout=10)
        if ws.peek_stdout():
            echoed += ws.read_stdout()
    report["interactive_echo_matches"] = echoed == sent
    ws.close()

    ws = stream(
        core.connect_get_namespaced_pod_exec, pod, ns,
        command=["sh", "-c", "exit 7"], stderr=True, stdin=False, stdout=True, tty=False,
        _preload_content=False,
    )
    ws.run_forever(timeout=30)
    report["exit_code"] = ws.returncode

    # Port-forward: an HTTP request over the forwarded socket.
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, ns, ports=str(port))
    sock = pf.socket(port)
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(b"GET /from-python HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
    answer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    report["portforward_status"] = head.split(b"\r\n")[0].decode()
    report["portforward_body"] = json.loads(body) if body else None
    report["portforward_error"] = pf.error(port)
    pf.close()

    print(json.dumps(report))


if __name__ == "__main__":
    main()
