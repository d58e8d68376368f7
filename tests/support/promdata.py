"""A real Prometheus on 127.0.0.1 serving data written beforehand: samples → OpenMetrics text → `promtool tsdb
create-blocks-from openmetrics` (one block: the default 2 h blocks make a month take ~30 s) → `prometheus` on that
TSDB with no scrape target, so queries see exactly the samples given."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from localnet import daemon, free_port

Sample = tuple[float, float]  # (unix seconds, value)


def openmetrics(family: str, kind: str, series: Sequence[tuple[Mapping[str, str], Sequence[Sample]]],
                sample_name: str | None = None) -> str:
    """One metric family in OpenMetrics text; a counter's samples are named FAMILY_total."""
    name = sample_name or (f"{family}_total" if kind == "counter" else family)
    lines = [f"# TYPE {family} {kind}"]
    for labels, samples in series:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines += [f"{name}{{{text}}} {value:g} {at:.3f}" for at, value in samples]
    return "\n".join(lines) + "\n"


@contextmanager
def prometheus_with(text: str, workdir: Path, timeout: float = 20) -> Iterator[str]:
    """`text`: OpenMetrics families (without `# EOF`). Yields the base URL; the server is stopped at the end."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        raise RuntimeError("prometheus and promtool not found: run scripts/bootstrap (Debian package prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    source, tsdb = workdir / "data.om", workdir / "tsdb"
    source.write_text(text + "# EOF\n", encoding="utf-8")
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=10000h",
                    str(source), str(tsdb)], check=True, capture_output=True, timeout=60)
    (workdir / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # retention far beyond the data: it counts back from the newest block, and a month is over the 15 d default
    argv = [prometheus, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
            "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"]
    with daemon(argv, f"{url}/-/ready", workdir / "prometheus.log", "Prometheus", timeout):
        yield url
