"""The job API against a real server process: submit -> poll -> download, ordering, cancel,
refused requests (status, message, nothing left on disk), metrics, the status page."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import av
import numpy as np
import pytest

from serve_helpers import Server

MAX_UPLOAD_MB = 1


@pytest.fixture(scope="module")
def allowed(tmp_path_factory):
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="module")
def server(tmp_path_factory, allowed):
    s = Server(tmp_path_factory.mktemp("serve-api") / "jobs",
               ["--max-upload-mb", str(MAX_UPLOAD_MB), "--allow-path", str(allowed)])
    s.start()
    yield s
    s.stop()


def decode(path):
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames


def audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def test_submit_poll_download(server, clip, tmp_path):
    r = server.submit(clip, {"seed": 3})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "queued" and r.headers["location"] == f"/v1/jobs/{body['id']}"
    assert body["input"]["width"] == 16 and body["input"]["frames"] == 8 and body["input"]["audio"] is True
    job = server.wait(body["id"])
    assert job["state"] == "succeeded", job
    p = job["progress"]
    assert p["fraction"] == 1.0 and p["frames"] == {"done": 8, "total": 8} and p["windows"]["total"] == 1
    assert p["steps"] == {"done": 1, "total": 1}

    r = server.client.get(job["result"]["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(r.content)
    assert len(r.content) == job["result"]["bytes"]
    frames = decode(out)
    assert len(frames) == 8 and frames[0].shape == (64, 64, 3)
    assert audio_packets(out) == audio_packets(clip) and audio_packets(clip)  # copied, not re-encoded

    # the same settings in-process through the library give the same frames: the server ran
    # exactly this job (settings merged over the server defaults as the CLI would)
    from uavrt.config import RunConfig, SamplerConfig
    from uavrt.runtime.files import upscale_file
    from uavrt.runtime.upscaler import Upscaler
    up = Upscaler.demo().with_config(RunConfig(sampler=SamplerConfig(steps=1, guidance_scale=0.0, seed=3)))
    ref = tmp_path / "ref.mp4"
    upscale_file(up, clip, ref)
    assert all(np.array_equal(a, b) for a, b in zip(decode(ref), frames))

    # Range requests
    r = server.client.get(job["result"]["url"], headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == out.read_bytes()[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(out.read_bytes())}"

    listed = server.client.get("/v1/jobs").json()
    assert body["id"] in [j["id"] for j in listed["jobs"]] and listed["counts"]["succeeded"] >= 1


def test_three_jobs_run_in_order(server, clip):
    ids = []
    for seed in (1, 2, 3):
        r = server.submit(clip, {"seed": seed})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    jobs = [server.wait(i) for i in ids]
    assert [j["state"] for j in jobs] == ["succeeded"] * 3
    for a, b in zip(jobs, jobs[1:]):
        assert a["started"] <= a["finished"] <= b["started"]  # FIFO, one at a time


def test_cancel_queued_and_running(server, clip):
    long = server.submit(clip, {"steps": 400}).json()["id"]
    queued = server.submit(clip).json()["id"]
    server.wait_running(long)
    assert server.job(queued)["state"] == "queued" and server.job(queued)["queue_position"] == 0

    r = server.client.delete(f"/v1/jobs/{queued}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert not (server.jobs_dir / "jobs" / queued).exists()

    r = server.client.delete(f"/v1/jobs/{long}")
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    job = server.wait(long, timeout=60)
    assert job["state"] == "cancelled"
    assert job["progress"]["steps"]["done"] < 400  # stopped at a step boundary, not at the end
    assert not (server.jobs_dir / "jobs" / long).exists()  # no partial result, no input
    r = server.client.get(f"/v1/jobs/{long}/result")
    assert r.status_code == 409 and "cancelled" in r.json()["error"]
    # the worker goes on with the next job
    nxt = server.submit(clip).json()["id"]
    assert server.wait(nxt)["state"] == "succeeded"
    # deleting a finished job removes it
    assert server.client.delete(f"/v1/jobs/{nxt}").json()["deleted"] is True
    assert server.client.get(f"/v1/jobs/{nxt}").status_code == 404
    assert not (server.jobs_dir / "jobs" / nxt).exists()


def raw_request(port, head: bytes, chunks=(), timeout=30) -> tuple:
    """Send a request by hand (to declare sizes httpx would not); returns (status, json body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        try:
            for c in chunks:
                s.sendall(c)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read its answer
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data:
                hdr, _, rest = data.partition(b"\r\n\r\n")
                n = [int(line.split(b":")[1]) for line in hdr.split(b"\r\n") if line.lower().startswith(b"content-length")]
                if n and len(rest) >= n[0]:
                    break
    hdr, _, rest = data.partition(b"\r\n\r\n")
    return int(hdr.split()[1]), json.loads(rest)


def multipart(fields: dict, boundary="XyZ") -> tuple:
    out = b""
    for name, value in fields.items():
        if isinstance(value, tuple):
            fname, data = value
            out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{fname}\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        else:
            out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def huge_header_mkv(tmp_path, side=16000) -> bytes:
    """A Matroska file whose header declares side x side FFV1 frames (FFV1 takes its frame size
    from the container: decoding one frame would allocate side*side*4 bytes). Made from a real
    300x300 file by patching the two EBML size elements (PixelWidth 0xB0, PixelHeight 0xBA)."""
    from uavrt.runtime.video.synth import write_test_video
    write_test_video(tmp_path / "small.mkv", frames=1, width=300, height=300, codec="ffv1", pix_fmt="bgr0")
    data = (tmp_path / "small.mkv").read_bytes()
    for elem in (b"\xb0", b"\xba"):
        old, new = elem + b"\x82" + (300).to_bytes(2, "big"), elem + b"\x82" + side.to_bytes(2, "big")
        assert data.count(old) == 1
        data = data.replace(old, new)
    return data


@pytest.mark.parametrize("case", ["not_video", "truncated", "empty", "huge_frame", "wide_frame",
                                  "over_limit", "no_file",
                                  "bad_json", "bad_settings", "unknown_setting", "wrong_type", "propagation",
                                  "path_outside", "unknown_field"])
def test_refused_uploads_leave_nothing(server, clip, tmp_path, case):
    before_jobs = server.client.get("/v1/jobs").json()["counts"]
    before = server.leftovers()
    data, files, expect = {}, None, None
    if case == "not_video":
        files, expect = {"video": ("notes.mp4", b"hello, this is not a video\n" * 100)}, (400, "notes.mp4")
    elif case == "truncated":
        whole = clip.read_bytes()
        files, expect = {"video": ("cut.mp4", whole[: len(whole) // 2])}, (400, "truncated")
    elif case == "empty":
        files, expect = {"video": ("empty.mp4", b"")}, (400, "empty")
    elif case == "huge_frame":
        files, expect = {"video": ("big.mkv", huge_header_mkv(tmp_path))}, (400, "16000x16000")
    elif case == "wide_frame":
        from uavrt.runtime.video.synth import write_test_video
        write_test_video(tmp_path / "wide.mp4", frames=2, width=4104, height=8, codec="libx264", pix_fmt="yuv420p")
        files, expect = {"video": ("wide.mp4", (tmp_path / "wide.mp4").read_bytes())}, (400, "4104x8")
    elif case == "over_limit":
        files = {"video": ("big.mp4", b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 200_000))}
        expect = (413, "--max-upload-mb")
    elif case == "no_file":
        data, expect = {"settings": "{}"}, (400, "'video'")
    elif case == "bad_json":
        data, expect = {"settings": "{steps: 2"}, (422, "settings is not valid JSON")
    elif case == "bad_settings":
        data, expect = {"settings": json.dumps({"steps": 0})}, (422, "steps=0")
    elif case == "unknown_setting":
        data, expect = {"settings": json.dumps({"stepz": 3})}, (422, "stepz")
    elif case == "wrong_type":
        data, expect = {"settings": json.dumps({"guidance": "lots"})}, (422, "guidance")
    elif case == "propagation":
        data, expect = {"settings": json.dumps({"propagation_steps": [0]})}, (422, "propagation_steps")
    elif case == "path_outside":
        data, expect = {"path": str(clip)}, (403, "--allow-path")
    elif case == "unknown_field":
        data, expect = {"colour": "red"}, (400, "colour")
    if files is None and case not in ("no_file", "path_outside", "unknown_field"):
        files = {"video": ("clip.mp4", clip.read_bytes())}
    if files is None:  # only text fields: still multipart (httpx would send a urlencoded form)
        payload, ctype = multipart(data)
        r = server.client.post("/v1/jobs", content=payload, headers={"content-type": ctype})
    else:
        r = server.client.post("/v1/jobs", files=files, data=data)
    body = r.json()
    assert r.status_code == expect[0], body
    assert expect[1] in body["error"], body
    if r.status_code == 422 and case != "bad_json":
        assert body["param"] in ("steps", "stepz", "guidance", "propagation_steps", "settings")
        assert "allowed" in body
    assert "/uploads/" not in body["error"] and str(server.jobs_dir) not in body["error"]  # no server paths
    assert server.leftovers() == before
    assert server.client.get("/v1/jobs").json()["counts"] == before_jobs


def test_declared_sizes_refused_before_the_body(server):
    before = server.leftovers()
    # a huge declared Content-Length: refused from the header, the body is never read
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {10 ** 12}\r\n\r\n").encode()
    status, body = raw_request(server.port, head)
    assert status == 413 and "declares 1000000000000 bytes" in body["error"]
    # no declared size (chunked): counted as it streams in, cut at the limit
    payload, ctype = multipart({"video": ("big.mp4", b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 300_000))})
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
    step = 64 * 1024
    chunks = [b"%x\r\n" % len(payload[i:i + step]) + payload[i:i + step] + b"\r\n" for i in range(0, len(payload), step)]
    status, body = raw_request(server.port, head, chunks + [b"0\r\n\r\n"])
    assert status == 413 and "limit" in body["error"]
    # a body shorter than it declared (client went away / truncated upload)
    payload, ctype = multipart({"video": ("c.mp4", b"\0" * 1000)})
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload) + 500}"
            f"\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head + payload)
        s.shutdown(socket.SHUT_WR)  # then the client stops sending
        s.recv(1024)
    deadline = time.monotonic() + 10
    while server.leftovers() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.leftovers() == before


def test_submit_by_path_inside_allowed_folder(server, clip, allowed):
    src = allowed / "in.mp4"
    shutil.copy(clip, src)
    payload, ctype = multipart({"path": "in.mp4"})
    r = server.client.post("/v1/jobs", content=payload, headers={"content-type": ctype})
    assert r.status_code == 202, r.text
    job = server.wait(r.json()["id"])
    assert job["state"] == "succeeded" and job["name"] == "in.mp4"
    server.client.delete(f"/v1/jobs/{job['id']}")
    assert src.exists()  # the user's file is never deleted with the job
    link = allowed / "escape.mp4"
    link.symlink_to(clip)  # a link out of the folder is outside it
    payload, ctype = multipart({"path": "escape.mp4"})
    r = server.client.post("/v1/jobs", content=payload, headers={"content-type": ctype})
    assert r.status_code == 403 and "--allow-path" in r.json()["error"]


def test_unknown_job_and_early_result(server, clip):
    r = server.client.get("/v1/jobs/nope")
    assert r.status_code == 404 and "nope" in r.json()["error"]
    jid = server.submit(clip, {"steps": 400}).json()["id"]
    r = server.client.get(f"/v1/jobs/{jid}/result")
    assert r.status_code == 409 and r.json()["state"] in ("queued", "running")
    server.client.delete(f"/v1/jobs/{jid}")
    server.wait(jid, timeout=60)


def test_metrics_and_health(server):
    from prometheus_client.parser import text_string_to_metric_families
    r = server.client.get("/v1/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    counts = server.client.get("/v1/jobs").json()["counts"]
    by_state = {s.labels["state"]: s.value for s in fams["uavrt_jobs"].samples}
    assert by_state == {k: float(v) for k, v in counts.items()}
    assert fams["uavrt_queue_length"].samples[0].value == counts["queued"]
    assert fams["process_resident_memory_bytes"].samples[0].value > 50e6
    assert fams["uavrt_frames"].samples[0].value >= 8  # frames of the finished jobs
    assert fams["uavrt_disk_used_bytes"].samples[0].value > 0
    h = server.client.get("/v1/health").json()
    assert h["status"] == "ok" and h["worker_alive"] and h["model"]["demo"] is True


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_status_page_in_chromium(server, clip):
    page = server.client.get("/")
    assert page.status_code == 200 and "<progress" not in page.text.split("<script>")[0]  # rows come from JS
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium) — the page was only fetched")
    jid = server.submit(clip, {"steps": 400}).json()["id"]
    try:
        running = server.wait_running(jid, min_steps=2)
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                              "--virtual-time-budget=4000", "--dump-dom", server.url + "/"],
                             capture_output=True, text=True, timeout=120)
        dom = out.stdout
        assert f'id="job-{jid}"' in dom, (out.stderr[-2000:], dom[-3000:])
        row = dom.split(f'id="job-{jid}"')[1].split("</tr>")[0]
        assert 'data-state="running"' in row and "<progress" in row
        value = float(row.split('value="')[1].split('"')[0])
        assert 0 < value < 1 and value >= running["progress"]["fraction"]
        assert "step " in row and "/400" in row
    finally:
        server.client.delete(f"/v1/jobs/{jid}")
        server.wait(jid, timeout=60)
