"""`longhorn-bi-webhook`: `serve` the admission webhook, or make its `certs`.

Every flag can also come from an environment variable, LONGHORN_BI_WEBHOOK_<FLAG>
(e.g. LONGHORN_BI_WEBHOOK_CERT_FILE); `--help` shows each name.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from longhorn_bi import __version__
from longhorn_bi.engine.errors import ExitCode, InvalidInput, LonghornBIError
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS, LonghornVersion

PROG_NAME = "longhorn-bi-webhook"
ENV_PREFIX = "LONGHORN_BI_WEBHOOK"


def _env(name: str) -> str:
    return f"{ENV_PREFIX}_{name}"


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        "max_content_width": 100,
        "show_default": True,
    }
)
@click.version_option(__version__, prog_name=PROG_NAME)
@click.option("--debug", is_flag=True, envvar=_env("DEBUG"), help="Show tracebacks of errors.")
def cli(debug: bool) -> None:
    """Admission webhook that enforces longhorn-bi's rules on BackingImage and
    BackupBackingImage objects."""


def _port(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if not 0 <= value <= 65535:
        raise click.BadParameter("must be a TCP port, 0 to 65535")
    return value


def _version(ctx: click.Context, param: click.Parameter, value: str) -> LonghornVersion | None:
    if value.strip().lower() == "auto":
        return None
    try:
        return LonghornVersion.parse(value)
    except InvalidInput as exc:
        raise click.BadParameter(
            f"{exc.message}; use auto or {', '.join(SUPPORTED_VERSIONS)}"
        ) from exc


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@cli.command()
@click.option(
    "--cert-file",
    type=_FILE,
    required=True,
    envvar=_env("CERT_FILE"),
    show_envvar=True,
    help="PEM serving certificate (reloaded when it changes).",
)
@click.option(
    "--key-file",
    type=_FILE,
    required=True,
    envvar=_env("KEY_FILE"),
    show_envvar=True,
    help="PEM private key of the certificate.",
)
@click.option(
    "--port",
    type=int,
    default=9443,
    callback=_port,
    envvar=_env("PORT"),
    show_envvar=True,
    help="HTTPS port of POST /validate.",
)
@click.option(
    "--metrics-port",
    type=int,
    default=8080,
    callback=_port,
    envvar=_env("METRICS_PORT"),
    show_envvar=True,
    help="Plain HTTP port of /metrics, /healthz and /readyz.",
)
@click.option(
    "--host", default="0.0.0.0", envvar=_env("HOST"), show_envvar=True, help="Address to listen on."
)
@click.option(
    "--kubeconfig",
    type=_FILE,
    default=None,
    envvar=_env("KUBECONFIG"),
    show_envvar=True,
    help="Kubeconfig to read the cluster from [default: in-cluster service account].",
)
@click.option(
    "--longhorn-namespace",
    default="longhorn-system",
    envvar=_env("LONGHORN_NAMESPACE"),
    show_envvar=True,
    help="Namespace Longhorn runs in; its objects are the facts.",
)
@click.option(
    "--longhorn-version",
    default="auto",
    callback=_version,
    envvar=_env("LONGHORN_VERSION"),
    show_envvar=True,
    help=f"auto (read from the installed CRDs) or one of {', '.join(SUPPORTED_VERSIONS)}.",
)
@click.option(
    "--cert-poll-seconds",
    type=click.FloatRange(0.05, 3600),
    default=5.0,
    envvar=_env("CERT_POLL_SECONDS"),
    show_envvar=True,
    help="How often to check the certificate files for a change.",
)
@click.option(
    "--drain-seconds",
    type=click.FloatRange(0, 600),
    default=20.0,
    envvar=_env("DRAIN_SECONDS"),
    show_envvar=True,
    help="On SIGTERM, how long to wait for reviews in flight.",
)
@click.option(
    "--shutdown-delay-seconds",
    type=click.FloatRange(0, 600),
    default=3.0,
    envvar=_env("SHUTDOWN_DELAY_SECONDS"),
    show_envvar=True,
    help="On SIGTERM, keep serving this long (readyz fails) so that the Service stops "
    "sending reviews here first.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    envvar=_env("LOG_LEVEL"),
    show_envvar=True,
    help="debug also logs every allowed review.",
)
@click.option(
    "--exempt-account",
    "exempt_accounts",
    multiple=True,
    default=("longhorn-service-account",),
    envvar=_env("EXEMPT_ACCOUNTS"),
    show_envvar=True,
    help="Requests of this account pass unchecked: a service account name in the Longhorn "
    "namespace, or a full user name (system:serviceaccount:NS:NAME). Repeatable; the "
    "variable takes a space-separated list.",
)
@click.option(
    "--policy-enforced",
    is_flag=True,
    envvar=_env("POLICY_ENFORCED"),
    show_envvar=True,
    help="The generated ValidatingAdmissionPolicy runs beside the webhook: leave the rules it "
    "enforces to it (`kubectl longhorn-bi rules -o json` tells which).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 100_000),
    default=64,
    envvar=_env("MAX_CONNECTIONS"),
    show_envvar=True,
    help="HTTPS connections held at once (in handshake or open); more are closed at once.",
)
def serve(
    cert_file: Path,
    key_file: Path,
    port: int,
    metrics_port: int,
    host: str,
    kubeconfig: Path | None,
    longhorn_namespace: str,
    longhorn_version: LonghornVersion | None,
    cert_poll_seconds: float,
    drain_seconds: float,
    shutdown_delay_seconds: float,
    log_level: str,
    exempt_accounts: tuple[str, ...],
    max_connections: int,
    policy_enforced: bool,
) -> None:
    """Serve POST /validate over HTTPS (TLS 1.2+), with live cluster facts."""
    import asyncio

    from longhorn_bi.webhook.listener import Limits
    from longhorn_bi.webhook.logging_json import setup_logging
    from longhorn_bi.webhook.server import ServeOptions
    from longhorn_bi.webhook.server import serve as run

    setup_logging(log_level)
    options = ServeOptions(
        cert_file=cert_file,
        key_file=key_file,
        host=host,
        port=port,
        metrics_port=metrics_port,
        kubeconfig=kubeconfig,
        longhorn_namespace=longhorn_namespace,
        longhorn_version=longhorn_version,
        cert_poll_seconds=cert_poll_seconds,
        drain_seconds=drain_seconds,
        shutdown_delay_seconds=shutdown_delay_seconds,
        limits=Limits(max_connections=max_connections),
        exempt_accounts=tuple(name.strip() for name in exempt_accounts if name.strip()),
        policy_enforced=policy_enforced,
    )
    asyncio.run(run(options))


@cli.command()
@click.option(
    "--service",
    required=True,
    envvar=_env("SERVICE"),
    show_envvar=True,
    help="Name of the webhook's Service.",
)
@click.option(
    "--namespace",
    required=True,
    envvar=_env("NAMESPACE"),
    show_envvar=True,
    help="Namespace of the Service.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    envvar=_env("OUT"),
    show_envvar=True,
    help="Directory for ca.crt, tls.crt and tls.key.",
)
@click.option(
    "--days",
    type=int,
    default=3650,
    envvar=_env("DAYS"),
    show_envvar=True,
    help="Validity of the CA and the certificate.",
)
@click.option(
    "--extra-name",
    "extra_names",
    multiple=True,
    help="Another DNS name or IP address for the certificate (repeatable).",
)
@click.option(
    "--secret",
    default=None,
    envvar=_env("SECRET"),
    show_envvar=True,
    help="Also store the pair in this kubernetes.io/tls Secret of NAMESPACE; a valid "
    "existing one is kept (and written to --out).",
)
@click.option(
    "--webhook-configuration",
    default=None,
    envvar=_env("WEBHOOK_CONFIGURATION"),
    show_envvar=True,
    help="Also set the caBundle of this ValidatingWebhookConfiguration (skipped while it "
    "does not exist).",
)
@click.option(
    "--failure-policy",
    type=click.Choice(["Fail", "Ignore"]),
    default=None,
    envvar=_env("FAILURE_POLICY"),
    show_envvar=True,
    help="With --webhook-configuration: set this failurePolicy together with the caBundle.",
)
@click.option(
    "--kubeconfig",
    type=_FILE,
    default=None,
    envvar=_env("KUBECONFIG"),
    show_envvar=True,
    help="Kubeconfig for --secret/--webhook-configuration [default: in-cluster].",
)
def certs(
    service: str,
    namespace: str,
    out: Path,
    days: int,
    extra_names: tuple[str, ...],
    secret: str | None,
    webhook_configuration: str | None,
    failure_policy: str | None,
    kubeconfig: Path | None,
) -> None:
    """Make a CA and a serving certificate for SERVICE.NAMESPACE.svc (installs without
    cert-manager)."""
    from longhorn_bi.webhook.certs import dns_names, issue, write_bundle

    bundle = issue(service, namespace, days=days, extra_names=extra_names)
    if secret:
        from longhorn_bi.webhook.certs_install import ensure_secret

        bundle, written = ensure_secret(
            secret, namespace, bundle, f"{service}.{namespace}.svc", kubeconfig
        )
        click.echo(f"{'wrote' if written else 'kept the valid'} Secret {namespace}/{secret}")
    paths = write_bundle(bundle, out)
    names = ", ".join([*dns_names(service, namespace), *extra_names])
    click.echo(f"wrote {paths['ca']}, {paths['cert']}, {paths['key']} for {names}")
    if webhook_configuration:
        from longhorn_bi.webhook.certs_install import patch_ca_bundle

        count = patch_ca_bundle(webhook_configuration, bundle.ca_pem, kubeconfig, failure_policy)
        if count:
            click.echo(f"set the caBundle of {count} webhook(s) in {webhook_configuration}")
        else:
            click.echo(f"{webhook_configuration} does not exist yet; caBundle not set")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; expected errors print one clean message, never a traceback."""
    args = argv if argv is not None else sys.argv[1:]
    try:
        cli.main(args=args, prog_name=PROG_NAME, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(ExitCode.FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LonghornBIError as exc:
        if "--debug" in args:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(ExitCode.OK)


if __name__ == "__main__":
    main()
