"""The HTTP API (FastAPI): submit, inspect, download and cancel jobs; health, metrics, a status page.

Every error is JSON {"error": message, "param": the offending parameter, ...}; the message names
the parameter, the value and what is allowed, as the CLI's do.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ConfigError, InputError
from .config import ServeConfig
from .store import FINISHED, Job, JobStore
from .uploads import UploadRefused, display_name, input_suffix, probe_input, receive_form
from .worker import Worker

log = logging.getLogger("uavrt.serve")
STATIC = Path(__file__).parent / "static"


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, headers: dict | None = None, **extra):
        self.status, self.message, self.param, self.headers, self.extra = status, message, param, headers, extra


def _error(status, message, param=None, headers=None, **extra):
    body = {"error": message, "param": param, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def settings_validator(upscaler, defaults: dict):
    """settings dict -> RunConfig, by the CLI's rules (uavrt.options), over the server defaults."""
    from ..options import OPTIONS, run_config
    field_to_option = {fld: name for name, (_, fld) in OPTIONS.items()}
    field_to_option.update({"guidance_scale": "guidance"})

    def validate(settings) -> object:
        if not isinstance(settings, dict):
            raise ConfigError("settings", settings, "a JSON object of option names to values, e.g. {\"steps\": 20}")
        merged = {**defaults, **settings}
        try:
            cfg = run_config(merged)
        except ConfigError as e:
            name = field_to_option.get(e.param, e.param)
            raise ConfigError(name, e.value, e.allowed) from None
        except (TypeError, ValueError) as e:  # a value of the wrong type deep in a config
            for k, v in settings.items():  # find which one, so the message names it
                try:
                    run_config({k: v})
                except Exception:
                    raise ConfigError(k, v, "a value of the option's type (see `uavrt upscale --help`)") from e
            raise ConfigError("settings", settings, f"valid option values ({e})") from e
        if cfg.sampler.propagation_steps and not _has_raft(upscaler):
            raise ConfigError("propagation_steps", list(cfg.sampler.propagation_steps),
                              "empty: this server's model was loaded without the propagator (start the server "
                              "with --propagation-steps to load it)")
        upscaler.with_config(cfg)  # any remaining model-dependent refusal, before the job is queued
        return cfg

    return validate


def _has_raft(upscaler) -> bool:
    return upscaler.model.raft is not None


def job_json(store: JobStore, job: Job) -> dict:
    out = {
        "id": job.id, "state": job.state, "name": job.name, "created": job.created, "started": job.started,
        "finished": job.finished, "settings": job.settings, "input": job.info,
        "progress": job.progress, "eta_s": (job.progress or {}).get("eta_s") if job.state == "running" else None,
        "error": job.error, "attempts": job.attempts,
        "queue_position": store.queue_position(job),
        "result": ({"url": f"/v1/jobs/{job.id}/result", "bytes": job.result_bytes}
                   if job.state == "succeeded" else None),
    }
    return out


def create_app(cfg: ServeConfig, upscaler) -> FastAPI:
    store = JobStore(cfg.jobs_dir)
    validate = settings_validator(upscaler, cfg.defaults)
    from ..runtime.files import OutputConfig
    output = OutputConfig(codec=cfg.codec, crf=cfg.crf, overwrite=False)

    def housekeeping():
        expired = store.expire(cfg.keep_seconds)
        if expired:
            log.info("retention: deleted %d finished jobs older than %.3g h", len(expired), cfg.keep_hours)

    worker = Worker(store, upscaler, validate, output, idle_hook=housekeeping,
                    idle_every_s=max(0.5, min(60.0, cfg.keep_seconds / 4)))
    counters = {"rejected": {}, "started": time.time()}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        report = store.recover()
        if any(report.values()):
            log.info("recovered jobs folder: %s", report)
        housekeeping()
        worker.start()
        yield
        worker.stop()
        store.close()

    app = FastAPI(title="uavrt", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.store, app.state.worker, app.state.cfg = store, worker, cfg

    def reject(reason: str):
        counters["rejected"][reason] = counters["rejected"].get(reason, 0) + 1

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return _error(e.status, e.message, e.param, e.headers, **e.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        return _error(e.status_code, str(e.detail), None, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e):
        first = e.errors()[0] if e.errors() else {}
        return _error(422, f"invalid request: {first.get('msg', e)}", ".".join(str(x) for x in first.get("loc", ())))

    def authorize(request: Request):
        if cfg.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            reject("auth")
            raise ApiError(401, "this server needs a bearer token: send 'Authorization: Bearer <token>' "
                                "(server option --token)", "authorization", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), cfg.token.encode()):
            reject("auth")
            raise ApiError(401, "the bearer token is wrong", "authorization",
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def get_job(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise ApiError(404, f"job {job_id!r} does not exist (finished jobs are deleted after --keep-hours)", "id")
        return job

    # --- jobs ----------------------------------------------------------------------------------
    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request):
        authorize(request)
        if store.counts()["queued"] >= cfg.max_queue:  # before reading a byte of the body
            reject("queue_full")
            raise ApiError(429, f"the queue is full ({cfg.max_queue} jobs waiting; server option --max-queue): "
                                f"retry later", "queue", {"Retry-After": "30"})
        free = cfg.disk_quota_bytes - await run_in_threadpool(store.disk_used)
        try:
            form = await receive_form(request, store.uploads, cfg.max_upload_bytes, free)
        except UploadRefused as e:
            reject({413: "too_large", 507: "quota"}.get(e.status, "bad_request"))
            raise ApiError(e.status, e.message, e.param, **e.extra)
        try:
            return await _create_job(form)
        finally:
            form.discard()  # moved into the job folder on success; removed on any refusal

    async def _create_job(form):
        try:
            settings = json.loads(form.fields.get("settings") or "{}")
        except json.JSONDecodeError as e:
            raise ApiError(422, f"settings is not valid JSON ({e.msg} at character {e.pos}); expected an object "
                                f"like {{\"steps\": 20}}", "settings")
        try:
            await run_in_threadpool(validate, settings)
        except ConfigError as e:
            reject("settings")
            raise ApiError(422, str(e), e.param, value=_jsonable(e.value), allowed=e.allowed)
        path_field = form.fields.get("path")
        if form.file is not None and path_field is not None:
            raise ApiError(400, "give either a file 'video' or a 'path', not both", "path")
        if form.file is not None:
            name, src, owned = display_name(form.filename), form.file, True
            if form.file_bytes == 0:
                reject("bad_video")
                raise ApiError(400, f"the uploaded file {name!r} is empty (0 bytes)", "video")
        elif path_field is not None:
            src = _allowed_path(path_field)
            name, owned = display_name(src.name), False
        else:
            raise ApiError(400, "the form has no file field 'video' (nor a 'path')", "video")
        try:
            info = await run_in_threadpool(probe_input, src)
        except InputError as e:
            reject("bad_video")
            msg = str(e).replace(str(src), name)  # never show the server's paths
            raise ApiError(400, f"not a usable video: {msg}", "video" if owned else "path")
        job_id = store.new_id()
        job_dir = store.job_dir(job_id)
        job_dir.mkdir(parents=True)
        if owned:
            dst = job_dir / f"input{input_suffix(name)}"
            os.replace(src, dst)  # same filesystem: atomic; the upload is now the job's
        else:
            dst = src
        job = store.add(job_id, name=name, input_path=str(dst), input_owned=owned, settings=settings, info=info,
                        max_queue=cfg.max_queue)
        if job is None:  # the queue filled while this upload arrived
            store.delete_files(job_id)
            reject("queue_full")
            raise ApiError(429, f"the queue is full ({cfg.max_queue} jobs waiting; server option --max-queue): "
                                f"retry later", "queue", {"Retry-After": "30"})
        worker.notify()
        log.info("job %s: queued (%s, %dx%d)", job_id, name, info["width"], info["height"])
        return JSONResponse(job_json(store, job), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})

    def _allowed_path(value: str) -> Path:
        if cfg.allow_path is None:
            raise ApiError(403, "submitting by 'path' is disabled on this server (start it with --allow-path DIR)",
                           "path")
        p = Path(value)
        p = (p if p.is_absolute() else cfg.allow_path / p)
        try:
            p = p.resolve(strict=True)
        except (OSError, RuntimeError):
            raise ApiError(400, f"path {value!r} does not exist inside the allowed folder", "path")
        if not p.is_relative_to(cfg.allow_path) or not p.is_file():
            raise ApiError(403, f"path {value!r} is not a file inside the allowed folder (--allow-path)", "path")
        return p

    @app.get("/v1/jobs")
    async def list_jobs(request: Request, state: str | None = None, limit: int = 100):
        authorize(request)
        jobs = [j for j in store.list(limit=max(1, min(limit, 10000))) if state is None or j.state == state]
        return {"jobs": [job_json(store, j) for j in jobs], "counts": store.counts()}

    @app.get("/v1/jobs/{job_id}")
    async def show_job(request: Request, job_id: str):
        authorize(request)
        return job_json(store, get_job(job_id))

    @app.get("/v1/jobs/{job_id}/result")
    async def result(request: Request, job_id: str):
        authorize(request)
        job = get_job(job_id)
        if job.state != "succeeded":
            raise ApiError(409, f"job {job_id} has no result: it is {job.state}"
                                + (f" ({job.error})" if job.error else ""), "state", state=job.state)
        path = store.result_path(job_id)
        if not path.is_file():
            raise ApiError(410, f"job {job_id}'s result file is gone", "id")
        stem = Path(job.name).stem or "result"
        return FileResponse(path, media_type="video/mp4", filename=f"{stem}_x4.mp4")

    @app.delete("/v1/jobs/{job_id}")
    async def cancel(request: Request, job_id: str):
        authorize(request)
        job = get_job(job_id)
        if job.state == "queued" and store.cancel_queued(job_id):
            store.delete_files(job_id)
            return JSONResponse(job_json(store, get_job(job_id)), status_code=200)
        job = get_job(job_id)
        if job.state == "running":
            if worker.request_cancel(job_id):
                body = job_json(store, job)
                body["cancel_requested"] = True
                return JSONResponse(body, status_code=202)  # stops at the next step boundary
            job = get_job(job_id)  # it finished in between
        if job.state in FINISHED:
            store.delete(job_id)
            return JSONResponse({"id": job_id, "deleted": True, "state": job.state}, status_code=200)
        raise ApiError(409, f"job {job_id} is {job.state}; try again", "state")

    # --- service -------------------------------------------------------------------------------
    @app.get("/v1/health")
    async def health():
        counts = store.counts()
        return {"status": "ok", "version": __version__, "model": _model_info(upscaler),
                "worker_alive": worker.is_alive(), "queue": counts["queued"], "running": worker.current,
                "uptime_s": round(time.time() - counters["started"], 1)}

    @app.get("/v1/metrics")
    async def metrics(request: Request):
        authorize(request)
        from .metrics import render
        text, ctype = await run_in_threadpool(render, store, worker, cfg, counters, upscaler)
        return Response(text, media_type=ctype)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse((STATIC / "index.html").read_text())

    return app


def _model_info(upscaler) -> dict:
    info = dict(getattr(upscaler, "info", {}) or {})
    return {k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))}


def _jsonable(v):
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return repr(v)


def run_server(cfg: ServeConfig, upscaler) -> int:
    """Serve until SIGINT/SIGTERM; a running job is then stopped at its next step and re-queued."""
    import uvicorn
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(cfg, upscaler)
    import gc
    gc.freeze()  # the model lives as long as the server: keep its objects out of every collection
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="info",
                                           timeout_graceful_shutdown=10))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the signal it shut down on; the shutdown was clean
        if not server.should_exit:
            raise
    return 0
