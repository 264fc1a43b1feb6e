"""The runner and report helpers: parameters, failures, atomic folders, kernels, glue, privacy."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cjlib import report
from cjlib.report import cli, runner
from cjlib.report.params import ParameterError, parse_pairs


def make_notebook(path: Path, params: str, body: str, *, kernel: str = "python3") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem}\n\n**Question.** A test."),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from cjlib import report\n" + body),
    ]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def good(tmp_path):
    return make_notebook(
        tmp_path / "01_good.ipynb",
        "x: int = 1  # how many\nlabel: str = 'a'  # a label",
        "import sys\nreport.glue('x', x)\nreport.glue('headline', f'x is {x}')\n"
        "report.glue('python', sys.executable)\nprint('visible output', x)",
    )


@pytest.fixture
def bad(tmp_path):
    return make_notebook(
        tmp_path / "02_bad.ipynb",
        "y: float = 0.5  # a share",
        "report.glue('headline', 'never')\nraise ValueError('boom at step 2')",
    )


def run_cli(*args: str) -> int:
    return cli.main(["run", *args, "--no-progress"])


def test_yaml_then_overrides_win(good, tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("x: 2\nlabel: from-yaml\n")
    code = run_cli(
        str(good), "-f", str(params), "-p", "x=3", "--out", str(tmp_path / "r"), "--run-id", "one"
    )
    assert code == 0
    folder = tmp_path / "r" / "one"
    results = json.loads((folder / "01_good.results.json").read_text())
    assert results["x"] == 3 and results["headline"] == "x is 3"
    run = json.loads((folder / "run.json").read_text())
    assert run["parameters"] == {"x": 3, "label": "from-yaml"}
    html = (folder / "01_good.html").read_text()
    assert "Parameters of this run" in html and "from-yaml" in html
    assert "visible output 3" in html and "report.glue(" not in html  # output shown, code hidden
    index = (folder / "index.html").read_text()
    assert "x is 3" in index and "01_good.html" in index


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("z=1", r"unknown parameter\(s\) \['z'\]; valid parameters are 01_good: x, label"),
        ("x=abc", r"parameter 'x' of 01_good must be int \(default 1\), got 'abc' \(str\)"),
        ("x=true", r"must be int"),
        ("x", r"-p expects key=value, got 'x'"),
    ],
)
def test_bad_parameters_fail_before_any_kernel(good, tmp_path, capsys, pair, message):
    code = run_cli(str(good), "-p", pair, "--out", str(tmp_path / "r"))
    assert code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_failing_notebook_beside_a_passing_one(good, bad, tmp_path, capsys):
    code = run_cli(str(good), str(bad), "--out", str(tmp_path / "r"), "--run-id", "mix")
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED 02_bad: PapermillExecutionError" in err and "boom at step 2" in err
    folder = tmp_path / "r" / "mix"
    assert (folder / "01_good.html").exists() and (folder / "02_bad.html").exists()
    html = (folder / "02_bad.html").read_text()
    assert html.index("This report failed") < html.index("boom at step 2")
    # inputs shown: 3 markdown cells (banner, header, parameters) + the failing code cell only
    assert html.count('class="jp-InputArea jp-Cell-inputArea"') == 4, "failing cell's code only"
    run = json.loads((folder / "run.json").read_text())
    assert list(run["failures"]) == ["02_bad"]


def test_run_folder_is_atomic(good, tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runner, "write_index", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        report.run_notebooks([good], out=tmp_path / "r", run_id="broken")
    assert list((tmp_path / "r").iterdir()) == []
    monkeypatch.undo()
    report.run_notebooks([good], out=tmp_path / "r", run_id="again")
    with pytest.raises(FileExistsError, match="exists already"):
        report.run_notebooks([good], out=tmp_path / "r", run_id="again")


def test_project_kernel_whatever_the_saved_kernel_name(tmp_path):
    """A notebook saved with another kernel name still runs in this environment's Python."""
    nb = make_notebook(
        tmp_path / "03_other.ipynb",
        "a: int = 1  # a",
        "import sys\nreport.glue('python', sys.executable)",
        kernel="conda-env-old",
    )
    result = report.run_notebooks([nb], out=tmp_path / "r", run_id="k")
    assert result.ok
    glued = json.loads((result.folder / "03_other.results.json").read_text())
    assert Path(glued["python"]) == Path(sys.executable)


def test_glue_round_trip(tmp_path):
    nb = make_notebook(
        tmp_path / "04_glue.ipynb",
        "n: int = 3  # n",
        "import numpy as np, pandas as pd\n"
        "report.glue('frame', pd.DataFrame({'a': [1, 2], 'b': [0.5, None]}))\n"
        "report.glue('scalar', np.float64(0.25))\nreport.glue('nested', {'k': [1, np.int64(n)]})\n"
        "report.glue('nan', float('nan'))",
    )
    result = report.run_notebooks([nb], out=tmp_path / "r", run_id="g")
    glued = json.loads((result.folder / "04_glue.results.json").read_text())
    assert glued["frame"] == [{"a": 1, "b": 0.5}, {"a": 2, "b": None}]
    assert glued["scalar"] == 0.25 and glued["nested"] == {"k": [1, 3]} and glued["nan"] is None
    assert "application/vnd.cjlib.glue+json" not in (result.folder / "04_glue.html").read_text()


def test_small_cells_suppressed_in_the_html(tmp_path):
    nb = make_notebook(
        tmp_path / "05_small.ipynb",
        "k: int = 10  # threshold",
        "import pandas as pd\nreport.setup(min_cell_size=k)\n"
        "df = pd.DataFrame({'segment': ['big', 'tiny'], 'customers': [250, 4],\n"
        "                   'rate': [0.61, 0.75]})\n"
        "report.glue('table', df)\n"
        "report.table(df, percent=['rate'])",
    )
    folder = report.run_notebooks([nb], out=tmp_path / "r", run_id="s").folder
    html = (folder / "05_small.html").read_text()
    assert "&lt; 10" in html and "75.0%" not in html and "61.0%" in html and "250" in html
    # results.json, shared with the HTML, holds the same: the small row blanked and flagged
    glued = json.loads((folder / "05_small.results.json").read_text())["table"]
    assert glued[1] == {"segment": "tiny", "customers": None, "rate": None, "suppressed": True}
    assert glued[0]["customers"] == 250 and glued[0]["suppressed"] is False
    folder = report.run_notebooks([nb], out=tmp_path / "r", run_id="s3", parameters={"k": 3}).folder
    assert "75.0%" in (folder / "05_small.html").read_text()
    glued = json.loads((folder / "05_small.results.json").read_text())["table"]
    assert "suppressed" not in glued[0] and glued[1]["customers"] == 4  # nothing below 3


def test_suppress_and_identifier_guard():
    df = pd.DataFrame({"stage": ["a", "b", "c"], "customers": [0, 3, 40], "share": [0, 0.1, 0.9]})
    out = report.suppress(df, min_cell_size=10)
    assert list(out["suppressed"]) == [False, True, False]
    assert pd.isna(out.loc[1, "share"]) and out.loc[2, "customers"] == 40
    with pytest.raises(ValueError, match="column 'customer_id' identifies customers"):
        report.table(pd.DataFrame({"customer_id": ["C1"], "n": [1]}))
    try:
        report.set_privacy(min_cell_size=5, allow_row_level=True)
        assert (
            "row-level output" in report.privacy_note()
            and "from the default 10 to 5" in report.privacy_note()
        )
        report.table(pd.DataFrame({"customer_id": ["C1"], "n": [1]}))
    finally:
        report.set_privacy()
    with pytest.raises(ValueError, match="min_cell_size must be an int >= 1, got 0"):
        report.set_privacy(min_cell_size=0)


def test_table_shows_an_estimate_and_its_interval_in_one_column():
    """x, x_low, x_high -> "x (low–high)"; missing bounds show the estimate alone, a missing
    estimate the dash; counts keep their separators; intervals=False keeps three columns."""
    import re

    nan = float("nan")
    df = pd.DataFrame({"label": ["a", "b", "c"], "customers": [1200, 40, 30],
                       "rate": [0.194, 0.5, nan], "rate_low": [0.179, nan, nan],
                       "rate_high": [0.211, nan, nan], "lift": [1.234, 2.0, 1.0],
                       "lift_low": [1.0, 1.5, 0.5], "lift_high": [1.5, 2.5, 1.5]})  # fmt: skip
    html = report.table(df, percent=["rate", "rate_low", "rate_high"], decimals={"lift": 1})
    html = html.to_html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert re.findall(r"<th[^>]*>([^<]*)</th>", html) == ["label", "customers", "rate", "lift"]
    assert cells[:4] == ["a", "1,200", "19.4% (17.9%–21.1%)", "1.2 (1.0–1.5)"]
    assert cells[6] == "50.0%" and cells[10] == "—"
    plain = report.table(df, percent=["rate"], intervals=False).to_html()
    assert "rate_low" in plain


def test_table_shows_differences_of_shares_in_points():
    """A segment's conversion minus the rest's (0.214 - 0.260) is a gap of 4.6 percentage
    points, not a 4.6 % (relative) change: ``points`` columns say "pts", the interval without
    an en dash between negative numbers; a gap that rounds to zero has no sign."""
    import re

    df = pd.DataFrame({"segment": ["a", "b", "c"], "difference": [-0.046, 0.0002, 0.12],
                       "difference_low": [-0.0471, -0.01, float("nan")],
                       "difference_high": [-0.045, 0.011, float("nan")],
                       "spread": [0.3, -0.0004, 0.05]})  # fmt: skip
    html = report.table(df, points=["difference", "difference_low", "difference_high", "spread"])
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html.to_html())
    assert cells[:3] == ["a", "-4.6 pts (-4.7 to -4.5)", "30.0 pts"]
    assert cells[3:] == ["b", "0.0 pts (-1.0 to 1.1)", "0.0 pts", "c", "12.0 pts", "5.0 pts"]


def test_table_shows_hours_in_the_unit_that_suits_them():
    """Click-stream times were all "0.0" in a table of hours: each value now gets its own unit
    (seconds under a minute, minutes under an hour, hours under two days, then days) and the
    column loses its "_hours" suffix; a missing value shows the dash."""
    import re

    df = pd.DataFrame({"step": [2, 3], "median_hours": [26 / 3600, 30.0],
                       "p90_hours": [2.2 / 60, float("nan")], "spend": [1.5, 2.25]})  # fmt: skip
    html = report.table(df, hours=["median_hours", "p90_hours"]).to_html()
    assert re.findall(r"<th[^>]*>([^<]*)</th>", html) == ["step", "median", "p90", "spend"]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells == ["2", "26 s", "2.2 min", "1.50", "3", "30.0 h", "—", "2.25"]
    from cjlib.units import duration_text

    assert duration_text(72.0) == "3.0 days" and duration_text(59.4 / 3600) == "59 s"
    assert duration_text(pd.NA) == duration_text(None) == "—"


def test_cj_list_shows_parameters(good, capsys):
    assert cli.main(["list", str(good)]) == 0
    out = capsys.readouterr().out
    assert "x: int = 1  # how many" in out and "label: str = 'a'  # a label" in out


def test_parse_pairs_reads_yaml_values():
    assert parse_pairs(["a=0.01", "b=[x, y]", "c=true", "d=text"]) == {
        "a": 0.01,
        "b": ["x", "y"],
        "c": True,
        "d": "text",
    }
    with pytest.raises(ParameterError, match="does not exist"):
        report.params.load_yaml("/nonexistent.yaml") if hasattr(report, "params") else __import__(
            "cjlib.report.params"
        ).report.params.load_yaml("/nonexistent.yaml")


def test_progress_is_plain_text_in_batch(monkeypatch):
    from cjlib.progress import track

    monkeypatch.setitem(os.environ, "CJLIB_BATCH", "1")
    assert list(track(range(3), desc="x")) == [0, 1, 2]
    monkeypatch.delitem(os.environ, "CJLIB_BATCH")
    bar = track(range(3), desc="x")  # a terminal: tqdm's text bar
    assert type(bar).__module__ == "tqdm.std" and list(bar) == [0, 1, 2]


def test_plotly_renders_offline(tmp_path):
    """The exported HTML carries plotly.js inline: no script is fetched from the network."""
    import re

    nb = make_notebook(
        tmp_path / "06_plotly.ipynb",
        "w: int = 1  # w",
        "import plotly.graph_objects as go\nreport.setup()\n"
        "report.show_plotly(go.Figure(go.Bar(x=['a', 'b'], y=[w, 2])))",
    )
    folder = report.run_notebooks([nb], out=tmp_path / "r", run_id="p").folder
    html = (folder / "06_plotly.html").read_text()
    assert "Plotly.newPlot" in html or "Plotly.react" in html
    assert len(html) > 3_000_000, "plotly.js is inlined"
    remote = re.findall(r"<script[^>]+src=[\"']https?://[^\"']*plotly[^\"']*", html)
    assert not remote, remote


def test_progress_in_a_batch_report_shows_the_finished_bar(tmp_path):
    """A cjlib loop inside a batch run leaves a finished text bar in the HTML, never 0 %."""
    nb = make_notebook(
        tmp_path / "07_loop.ipynb",
        "steps: int = 40  # loop length",
        "from cjlib.progress import track\ntotal = sum(track(range(steps), desc='bootstrap'))\n"
        "print('total', total)",
    )
    folder = report.run_notebooks([nb], out=tmp_path / "r", run_id="loop").folder
    html = (folder / "07_loop.html").read_text()
    assert "bootstrap: 100% 40/40" in html and "bootstrap:   0%" not in html


def test_executive_summary_ranks_opportunities_across_studies(tmp_path, bad):
    a = make_notebook(
        tmp_path / "08_a.ipynb",
        "s: int = 1  # s",
        "report.glue('headline', 'A found a leak')\n"
        "report.glue('opportunities', [{'title': 'Fix checkout', 'evidence': '29 % lost', "
        "'customers': 900}, {'title': 'Small thing', 'evidence': 'x', 'customers': 12}])",
    )
    b = make_notebook(
        tmp_path / "09_b.ipynb",
        "t: int = 1  # t",
        "report.glue('headline', 'B found a channel')\n"
        "report.glue('opportunities', [{'title': 'Shift spend to referral', "
        "'evidence': 'credit share 2x cost share', 'customers': 1500}, "
        "{'title': 'Win back churners', 'evidence': 'y', 'customers': 300}])",
    )
    folder = report.run_notebooks([a, b, bad], out=tmp_path / "r", run_id="sum").folder
    page = (folder / "summary.html").read_text()
    first, second, third = (
        page.index(t) for t in ("Shift spend to referral", "Fix checkout", "Win back churners")
    )
    assert first < second < third and "Small thing" not in page
    assert "A found a leak" in page and "B found a channel" in page
    assert "1 of 3 studies failed" in page and "Report failed" in page
    assert "summary.html" in (folder / "index.html").read_text()


def test_pipes_in_parameter_values_do_not_break_tables(tmp_path):
    nb = make_notebook(
        tmp_path / "10_pipes.ipynb",
        "steps: list = ['a|b', 'c']  # funnel steps",
        "report.show_markdown(report.lineage(parameters={'steps': steps}))",
    )
    folder = report.run_notebooks([nb], out=tmp_path / "r", run_id="pipes").folder
    html = (folder / "10_pipes.html").read_text()
    assert html.count("<td>['a|b', 'c']</td>") == 2  # parameters block and appendix
    assert "\\|" not in html


def test_data_quality_warnings_are_notes_without_customer_rows(monkeypatch):
    """The CDNOW report printed the duplicate warning as a red stderr block with five example
    rows (customer ids, dates): row-level data in an aggregates-only report. After setup() the
    warning is a note; its example rows appear only with allow_row_level=True."""
    import warnings

    import IPython.display

    from cjlib.schema import DataQualityWarning

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    text = "events: 2 exact duplicate rows on ['customer_id'] (kept)\n  customer_id\n0  c00398"
    for allow in (False, True):
        with warnings.catch_warnings():  # restores warnings.showwarning on exit
            warnings.simplefilter("always")
            report.setup(allow_row_level=allow)
            warnings.warn(DataQualityWarning(text), stacklevel=1)
    report.set_privacy(min_cell_size=10, allow_row_level=False)  # back to the defaults
    assert len(shown) == 2
    assert "2 exact duplicate rows" in shown[0] and "c00398" not in shown[0]
    assert "aggregates only" in shown[0]
    assert "c00398" in shown[1]


def test_values_that_round_to_zero_have_no_minus_sign():
    """-0.0003 as a share showed "-0.0%" (read as a small loss) and -0.001 as "-0.00"; a real
    negative value keeps its sign."""
    import re

    df = pd.DataFrame({"label": ["a", "b"], "share": [-0.0003, -0.02], "d": [-0.001, -1.5],
                       "d_low": [-0.004, -2.0], "d_high": [0.002, -1.0]})  # fmt: skip
    html = report.table(df, percent=["share"]).to_html()
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells == ["a", "0.0%", "0.00 (0.00–0.00)", "b", "-2.0%", "-1.50 (-2.00–-1.00)"]
