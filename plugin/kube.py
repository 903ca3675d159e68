"""The one thin wrapper over the `kubernetes` client, for the Longhorn objects we use.

The client (~0.3 s to import) is imported inside functions so that commands which never
talk to a cluster, and `--help`, stay fast. Every API or transport error leaves this module
as an engine error (ClusterError, NotFound) with a message that names the object, keeps the
API server's own words (RBAC messages included) and says how to fix it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import click

from longhorn_bi import __version__
from longhorn_bi.engine.errors import (
    ClusterError,
    Forbidden,
    InvalidInput,
    LonghornBIError,
    NotFound,
)
from longhorn_bi.engine.rules.base import LONGHORN_NAMESPACE
from longhorn_bi.plugin.in_pod import ServiceAccount, in_pod, pod_configuration

GROUP = "longhorn.io"
API_VERSION = "v1beta2"
FIELD_MANAGER = "kubectl-longhorn-bi"
PLURALS = {
    "BackupBackingImage": "backupbackingimages",
    "BackingImage": "backingimages",
    "BackupTarget": "backuptargets",
    "Setting": "settings",
    "Volume": "volumes",
}
KINDS = {plural: kind for kind, plural in PLURALS.items()}
LIST_CHUNK = 500
CONNECT_TIMEOUT = 10.0

F = TypeVar("F", bound=Callable[..., Any])


class WatchExpired(ClusterError):
    """The watch's resourceVersion is too old (410 Gone): list or get again, then re-watch."""


class Unreachable(ClusterError):
    """No answer from the API server (refused, reset, timed out): worth a retry when waiting."""


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the cluster, as kubectl's flags say it."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = LONGHORN_NAMESPACE
    request_timeout: float | None = None  # seconds per request; None: no limit
    pod_account: ServiceAccount | None = None  # in a pod; None: where the environment says


def parse_duration(text: str, flag: str) -> float:
    """Seconds of a Go/kubectl duration: `90`, `30s`, `1m30s`, `1.5h`, `500ms`; 0 is allowed."""
    import re

    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise InvalidInput(
            f"{flag}: {text!r} is not a duration",
            hint=f"use a number with a unit, e.g. {flag} 30s, 5m or 1h30m",
        )
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60}m"


def duration_callback(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    """A click callback: seconds of a duration option, None for 0 (no limit)."""
    flag = param.opts[0] if param.opts else str(param.name)
    try:
        seconds = parse_duration(value, flag)
    except InvalidInput as exc:
        raise click.BadParameter(f"{value!r} is not a duration ({exc.hint})") from None
    return seconds or None


def connection_options(function: F) -> F:
    """kubectl's connection flags except -n/--namespace, which the commands already have."""
    for decorator in reversed(
        [
            click.option(
                "--kubeconfig",
                metavar="PATH",
                help="Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).",
            ),
            click.option(
                "--context", "kube_context", metavar="NAME", help="The kubeconfig context to use."
            ),
            click.option(
                "--request-timeout",
                default="0",
                show_default=True,
                metavar="DURATION",
                callback=duration_callback,
                help="Time to wait for one API request (e.g. 10s, 1m); 0 waits as long as needed.",
            ),
        ]
    ):
        function = decorator(function)
    return function


def connection_from(namespace: str, params: Mapping[str, Any]) -> Connection:
    """The Connection of a command's parsed connection_options and -n/--namespace."""
    timeout = params.get("request_timeout")
    return Connection(
        kubeconfig=params.get("kubeconfig") or None,
        context=params.get("kube_context") or None,
        namespace=namespace,
        request_timeout=timeout if isinstance(timeout, float) else None,
    )


def kubeconfig_paths(given: str | None) -> list[str]:
    """The kubeconfig files kubectl would read: --kubeconfig, else $KUBECONFIG, else default."""
    if given:
        return [given]
    env = os.environ.get("KUBECONFIG", "")
    paths = [p for p in env.split(os.pathsep) if p]
    return paths or [str(Path("~/.kube/config").expanduser())]


def _status_message(body: Any) -> str:
    """The `message` of a Kubernetes Status body, or the body itself when it is not one."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return str(status["message"])
    return body.strip()[:500]


class Kube:
    """Typed calls on the longhorn.io/v1beta2 objects of one namespace."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.namespace = connection.namespace
        self._pod_ca = ""  # the CA file of a pod's service account, once in use

    @cached_property
    def api_client(self) -> Any:
        from kubernetes import config
        from kubernetes.client import Configuration
        from kubernetes.config.config_exception import ConfigException
        from urllib3.util.retry import Retry

        paths = kubeconfig_paths(self.connection.kubeconfig)
        account = self.connection.pod_account
        if self.connection.kubeconfig is None and in_pod(account):
            # A verify worker in its Job's pod: the service account's token and CA.
            from kubernetes.client import ApiClient

            pod_client = ApiClient(pod_configuration(account))
            self._pod_ca = str(pod_client.configuration.ssl_ca_cert)
            pod_client.user_agent = f"kubectl-longhorn-bi/{__version__}"
            return pod_client
        if not any(Path(p).expanduser().is_file() for p in paths):
            source = "--kubeconfig" if self.connection.kubeconfig else "the kubeconfig"
            raise ClusterError(
                f"{source} {os.pathsep.join(paths)} does not exist",
                hint="give --kubeconfig PATH, set KUBECONFIG, or create ~/.kube/config",
            )
        configuration = Configuration()
        # A refused connection is retried at once; a request that timed out is not, so that
        # --request-timeout bounds each request as it does for kubectl.
        configuration.retries = Retry(total=3, connect=3, read=0, status=0, redirect=3)
        try:
            new_client: Callable[..., Any] = config.new_client_from_config
            client = new_client(
                config_file=os.pathsep.join(paths),
                context=self.connection.context,
                persist_config=False,
                client_configuration=configuration,
            )
        except ConfigException as exc:
            what = f"context {self.connection.context!r}" if self.connection.context else "it"
            raise ClusterError(
                f"cannot use the kubeconfig {os.pathsep.join(paths)}: {exc}",
                hint=f"check that {what} exists in it (kubectl config get-contexts)",
            ) from None
        except (OSError, ValueError) as exc:
            raise ClusterError(
                f"cannot read the kubeconfig {os.pathsep.join(paths)}: {exc}"
            ) from None
        client.user_agent = f"kubectl-longhorn-bi/{__version__}"
        return client

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    @cached_property
    def _custom(self) -> Any:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self.api_client)

    def _timeout(self) -> float | None:
        return self.connection.request_timeout

    @contextmanager
    def _calling(self, verb: str, plural: str, name: str | None = None) -> Iterator[None]:
        """Turn the client's and urllib3's errors into ours, naming what was asked."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
        from urllib3.exceptions import TimeoutError as Urllib3Timeout

        try:
            yield
        except ApiException as exc:
            raise self.api_error(exc, verb, plural, name) from None
        except HTTPError as exc:
            # urllib3 wraps the last failure of its retries in MaxRetryError.reason; a refused
            # connection is a (Connect)TimeoutError there too, for compatibility.
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, Urllib3Timeout) and not isinstance(reason, NewConnectionError):
                raise Unreachable(
                    f"the API server at {self.host} did not answer to {verb} {plural} in time",
                    hint="raise --request-timeout, or check the cluster's health",
                ) from None
            if isinstance(reason, SSLError):
                raise self.untrusted(reason) from None
            raise self.unreachable(exc) from None

    def untrusted(self, reason: BaseException) -> ClusterError:
        """A TLS failure: no retry mends it, so it is not Unreachable."""
        if self._pod_ca:
            hint = (
                f"the pod's CA file {self._pod_ca} must hold the CA that signed the API "
                "server's certificate"
            )
        else:
            hint = (
                "check certificate-authority(-data) of the kubeconfig's cluster (or its server URL)"
            )
        return ClusterError(
            f"cannot verify the API server's certificate at {self.host}: {reason}", hint=hint
        )

    def unreachable(self, exc: BaseException) -> Unreachable:
        reason = getattr(exc, "reason", None) or exc
        text = str(reason)
        if "Connection refused" in text:
            text = "connection refused"
        return Unreachable(
            f"cannot reach the API server at {self.host}: {text}",
            hint="check that the cluster is up and that --kubeconfig/--context point at it",
        )

    def api_error(
        self, exc: Any, verb: str, plural: str, name: str | None = None
    ) -> LonghornBIError:
        code = int(exc.status or 0)
        message = _status_message(exc.body) or str(exc.reason or "")
        kind = KINDS.get(plural, plural)
        what = f"{kind} {name!r}" if name else f"{plural}.{GROUP}"
        resource = f"{plural}.{GROUP}" if plural in KINDS else plural
        where = f"in namespace {self.namespace!r}"
        if code == 404 and name is None:
            return ClusterError(
                f"the API server at {self.host} does not serve {resource}: Longhorn's CRDs are "
                "not installed",
                hint=f"install Longhorn 1.6 or later; check with: kubectl get crd {resource}",
            )
        if code == 404:
            return NotFound(
                f"{what} not found {where}",
                hint=f"list them with: kubectl get {resource} -n {self.namespace}",
            )
        if code == 403:
            # Server-side apply is an HTTP PATCH (that may create): RBAC knows no "apply".
            rbac = "patch" if verb == "apply" else verb
            wanted = "patch and create" if verb == "apply" else verb
            if plural == "customresourcedefinitions":
                resource, scope, ns_flag = f"{plural}.apiextensions.k8s.io", "cluster-wide", ""
            else:
                scope, ns_flag = where, f" -n {self.namespace}"
            return Forbidden(
                f"forbidden: {message}",
                hint=f"ask for RBAC permission to {wanted} {resource} {scope}; check with: "
                f"kubectl auth can-i {rbac} {resource}{ns_flag}",
            )
        if code == 401:
            hint = "log in again or fix the user of the kubeconfig context"
            if self._pod_ca:
                hint = "the pod's service account token was refused: check the token's audience"
                hint += " and that the Job runs as its service account"
            return ClusterError(
                f"unauthorized: the API server at {self.host} did not accept the credentials",
                hint=hint,
            )
        if code == 409:
            hint = (
                "another field manager owns these fields; re-run with --force-conflicts to take "
                "them over"
                if verb == "apply"
                else "the object changed meanwhile; try again"
            )
            return ClusterError(f"conflict on {what}: {message}", hint=hint)
        if code == 410 and verb == "watch":
            return WatchExpired(f"watch of {what} expired: {message}")
        if code in (400, 422):
            return ClusterError(f"{what} was rejected: {message}")
        return ClusterError(f"{verb} {what} failed ({code} {exc.reason}): {message}")

    # Calls -------------------------------------------------------------------

    def get(self, plural: str, name: str) -> dict[str, Any]:
        with self._calling("get", plural, name):
            return _json(
                self._custom.get_namespaced_custom_object(
                    GROUP,
                    API_VERSION,
                    self.namespace,
                    plural,
                    name,
                    _preload_content=False,
                    _request_timeout=self._timeout(),
                )
            )

    def find(self, plural: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(plural, name)
        except NotFound:
            return None

    def list(self, plural: str) -> list[dict[str, Any]]:
        """All objects of the namespace, read in chunks."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            with self._calling("list", plural):
                page = _json(
                    self._custom.list_namespaced_custom_object(
                        GROUP,
                        API_VERSION,
                        self.namespace,
                        plural,
                        limit=LIST_CHUNK,
                        _continue=token,
                        _preload_content=False,
                        _request_timeout=self._timeout(),
                    )
                )
            items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    def apply(
        self, obj: dict[str, Any], *, dry_run: bool = False, force: bool = False
    ) -> dict[str, Any]:
        """Server-side apply of `obj` (field manager kubectl-longhorn-bi)."""
        plural = PLURALS[obj["kind"]]
        name = obj["metadata"]["name"]
        with self._calling("apply", plural, name):
            # Raw JSON: the generated client maps only 200 and drops a create's 201 body.
            response = self._custom.patch_namespaced_custom_object(
                GROUP,
                API_VERSION,
                self.namespace,
                plural,
                name,
                obj,
                dry_run="All" if dry_run else None,
                field_manager=FIELD_MANAGER,
                force=True if force else None,
                _content_type="application/apply-patch+yaml",
                _preload_content=False,
                _request_timeout=self._timeout(),
            )
            return _json(response)

    def rest(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        plural: str,
        name: str | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One call on any API path (core and batch objects alike), answered as JSON."""
        with self._calling(verb, plural, name):
            params = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client._call_with_legacy_options(
                params, {"200": "object", "201": "object"}, False, False, self._timeout(), True
            )
            return _json(response)

    def core_path(self, plural: str, name: str = "", group: str = "") -> str:
        """The namespaced path of a built-in object: core (group "") or /apis/<group>."""
        root = f"/apis/{group}" if group else "/api/v1"
        return f"{root}/namespaces/{self.namespace}/{plural}" + (f"/{name}" if name else "")

    def secret_data(self, name: str) -> dict[str, str]:
        """A Secret's data, decoded; the values must never reach a message or a log."""
        import base64

        obj = self.rest(
            "GET", self.core_path("secrets", name), verb="get", plural="secrets", name=name
        )
        data = obj.get("data") or {}
        decoded: dict[str, str] = {}
        for key, value in data.items() if isinstance(data, dict) else []:
            try:
                decoded[str(key)] = base64.b64decode(str(value)).decode()
            except ValueError:
                continue  # not text: no credential key Longhorn reads
        return decoded

    def annotate(self, plural: str, name: str, annotations: Mapping[str, str]) -> None:
        """Merge-patch annotations onto a Longhorn object (nothing else is touched)."""
        path = f"/apis/{GROUP}/{API_VERSION}/namespaces/{self.namespace}/{plural}/{name}"
        body = {"metadata": {"annotations": dict(annotations)}}
        self.rest(
            "PATCH",
            path,
            verb="patch",
            plural=plural,
            name=name,
            body=body,
            content_type="application/merge-patch+json",
        )

    def get_crd(self, name: str) -> dict[str, Any] | None:
        """A CustomResourceDefinition as plain JSON, or None when it is not installed."""
        from kubernetes.client import ApiextensionsV1Api

        api = ApiextensionsV1Api(self.api_client)
        try:
            with self._calling("get", "customresourcedefinitions", name):
                return _json(
                    api.read_custom_resource_definition(
                        name, _preload_content=False, _request_timeout=self._timeout()
                    )
                )
        except NotFound:
            return None

    def watch(
        self, plural: str, name: str, resource_version: str, timeout: float
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) events of one object after `resource_version`, for up to `timeout` s.

        Ends when the server closes the stream. An ERROR event of 410 raises WatchExpired.
        """
        seconds = max(1, int(timeout))
        with self._calling("watch", plural, name):
            response = self._custom.list_namespaced_custom_object(
                GROUP,
                API_VERSION,
                self.namespace,
                plural,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                watch=True,
                _preload_content=False,
                # The server ends the watch after timeout_seconds; the read timeout only
                # catches a server that stopped answering without closing the connection.
                _request_timeout=(CONNECT_TIMEOUT, seconds + 15.0),
            )
        try:
            with self._calling("watch", plural, name):
                for line in _lines(response):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a dropped connection
                    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
                        continue
                    kind, obj = event.get("type"), event["object"]
                    if kind == "ERROR":
                        raise self.api_error(_StatusError(obj), "watch", plural, name)
                    yield str(kind), obj
        finally:
            response.release_conn()


def _json(response: Any) -> dict[str, Any]:
    """The JSON object of a raw (not preloaded) response."""
    try:
        data = json.loads(response.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ClusterError(
            f"the API server answered something that is not a JSON object: {response.data[:200]!r}"
        )
    return data


class _StatusError:
    """A watch ERROR event's Status in the shape of an ApiException."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status.get("code")
        self.reason = status.get("reason")
        self.body = json.dumps(status)


def _lines(response: Any) -> Iterator[bytes]:
    """Newline-delimited JSON of a watch stream, as it arrives."""
    buffer = b""
    for chunk in response.stream(4096, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


COMPLETION_TIMEOUT = 3.0


def name_completer(plural: str) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """A click shell_complete callback offering the names of `plural` in the cluster.

    It reads the connection flags typed so far; any failure offers nothing, since a
    completion must never print an error into the user's command line.
    """

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        params = ctx.params
        namespace = params.get("namespace")
        connection = Connection(
            kubeconfig=params.get("kubeconfig") or None,
            context=params.get("kube_context") or None,
            namespace=namespace if isinstance(namespace, str) else LONGHORN_NAMESPACE,
            request_timeout=COMPLETION_TIMEOUT,
        )
        try:
            names = [
                str((obj.get("metadata") or {}).get("name", ""))
                for obj in Kube(connection).list(plural)
            ]
        except Exception:
            return []
        return sorted(n for n in names if n.startswith(incomplete))

    return complete
