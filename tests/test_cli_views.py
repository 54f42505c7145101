"""The CLI's views of a search: change lines, diff, status, estimates, start-up, plain error text."""

import json
import subprocess
import sys

import pytest
from test_inspect_cli import invoke, lineage  # noqa: F401  (the fixture: a small lineage in SQLite and PostgreSQL)
from typer.testing import CliRunner

from evolve.cli.app import app
from evolve.cli.changes import change_summary
from evolve.search.estimate import Costs, duration, remaining

HYPERPARAMS_DIFF = """--- a
+++ b
@@ -1,3 +1,3 @@
 HYPERPARAMS = {
-    "epochs": 8.0,  # total steps
+    "epochs": 7.61,  # total steps
 }
"""


def test_change_summary_names_the_constant_and_both_values():
    assert change_summary(HYPERPARAMS_DIFF) == "epochs 8.0 -> 7.61"
    code = "@@\n-        newton_schulz_steps: int = 3,\n+        newton_schulz_steps: int = 4,\n+    y = 2\n"
    assert change_summary(code) == "newton_schulz_steps 3 -> 4; + y = 2"
    assert change_summary(HYPERPARAMS_DIFF, "Shorter schedule:  fewer epochs") == "Shorter schedule: fewer epochs"
    assert change_summary("") == ""
    assert len(change_summary("@@\n" + "".join(f"-a{i} = {i}\n+a{i} = {i + 1}\n" for i in range(9)))) <= 80


def test_lineage_lines_carry_island_change_and_promotion(lineage):  # noqa: F811
    url, ids = lineage
    lines = invoke("lineage", "--db", url).stdout.splitlines()
    assert "island 0 | first champion" in lines[0]
    assert "LR 0.1 -> 0.2" in lines[1] and f"promoted over #{ids['seed']}" in lines[1], lines[1]
    tree = json.loads(invoke("lineage", "--db", url, "--json").stdout)
    assert tree[0]["children"][0]["change"] == "LR 0.1 -> 0.2" and tree[0]["promotion"] == "first champion"


def test_diff_between_any_two_candidates(lineage):  # noqa: F811
    url, ids = lineage
    result = invoke("diff", str(ids["child"]), str(ids["grandchild"]), "--db", url)
    assert result.exit_code == 0, result.output
    assert "+EPOCHS = 8" in result.stdout and "+LR" not in result.stdout and f"#{ids['grandchild']}/optimizer.py" in result.stdout
    from_seed = invoke("diff", str(ids["seed"]), str(ids["grandchild"]), "--db", url).stdout  # the seed stands for the shipped set
    assert "+LR = 0.2" in from_seed and "+EPOCHS = 8" in from_seed
    same = invoke("diff", str(ids["child"]), str(ids["child"]), "--db", url)
    assert same.exit_code == 0 and "identical" in same.stdout
    assert json.loads(invoke("diff", str(ids["seed"]), str(ids["child"]), "--db", url, "--json").stdout)["components"]["optimizer"]
    missing = invoke("diff", "1", "9999", "--db", url)
    assert missing.exit_code == 1 and "no candidate with id 9999" in missing.output


def test_status_reads_a_search_from_the_database(lineage):  # noqa: F811
    url, ids = lineage
    result = invoke("status", "search-b", "--db", url)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "search-b: running" in text and "generation 3 of 20" in text and "4 of 80 proposals made" in text
    assert f"champion history: #{ids['seed']} 3.05 s 94.9% -> #{ids['child']} 2.85 s 95.1%" in text
    assert "left: about" in text and "GPU hours" in text and "$0.00" in text
    report = json.loads(invoke("status", "search-b", "--db", url, "--json").stdout)
    assert report["proposed"] == 4 and report["tokens"] == 940 and report["seconds_left"] > 0


def test_remaining_time_from_costs_and_budgets():
    costs = Costs(evaluation_seconds=60.0, promotion_seconds=300.0, promotion_rate=0.1)
    assert remaining(costs, 10, 2).seconds == pytest.approx((10 * 60 + 1 * 300) / 2)
    limited = remaining(costs, 10, 1, device_seconds_left=120.0)
    assert limited.seconds == 120.0 and limited.limited_by == "device-time" and "budget" in limited.text()
    # While jobs run, the work already done on them comes off (the panel passes each job's elapsed time, capped).
    assert remaining(costs, 10, 2, seconds_in_progress=50.0).seconds == pytest.approx((10 * 60 + 1 * 300 - 50) / 2)
    assert remaining(costs, 1, 1, seconds_in_progress=1e6).seconds == 0.0
    assert remaining(Costs(), 5, 1).seconds is None and "unknown until a candidate is measured (5" in remaining(Costs(), 5, 1).text()
    assert [duration(s) for s in (12, 245, 7800)] == ["12 s", "4 min 05 s", "2 h 10 min"]


def test_error_text_keeps_its_brackets(tmp_path):
    missing = tmp_path / "x[download].py"
    result = CliRunner().invoke(app, ["eval", str(missing), "--component", "tta", "--device", "cpu", "--data", "synthetic"])
    assert result.exit_code == 2 and "x[download].py does not exist" in result.output, result.output


def test_threads_and_presets_are_settings_config_show_prints():
    shown = json.loads(CliRunner().invoke(app, ["config", "show", "--json"]).stdout)
    assert shown["cascade"]["limits"]["threads"] == 1 and shown["promotion"]["limits"]["threads"] == 1
    result = CliRunner().invoke(app, ["config", "show", "--preset", "quick"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and "preset quick" in result.stdout
    assert "unknown preset 'slow'" in CliRunner().invoke(app, ["config", "show", "--preset", "slow"]).output


def test_help_shows_defaults_and_readable_types():
    text = CliRunner().invoke(app, ["start", "--help"], env={"COLUMNS": "200"}).stdout
    assert "<list[str]>" not in text and "KEY=VALUE" in text and "[default: 20]" in text and "--seed" in text and "--runs" in text


def test_help_and_inspection_commands_import_only_what_they_need(lineage, tmp_path):  # noqa: F811
    """Start-up (bench/cli_startup.py): help loads no database or numerics; the inspection
    commands read through the DB-API driver (evolve/database/reader.py): no SQLAlchemy, no ORM
    models, no Store, and none of numpy, Alembic, torch, scipy or openai."""
    url, ids = lineage
    if not url.startswith("sqlite"):
        pytest.skip("one backend is enough for the imports")
    probe = (
        "import json, sys\nfrom typer.testing import CliRunner\nfrom evolve.cli.app import app\n"
        "heavy = ('torch', 'scipy', 'openai', 'numpy', 'alembic', 'sqlalchemy', 'evolve.database.models',\n"
        "         'evolve.database.store', 'evolve.database.connection', 'psycopg')\n"
        "report = []\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    code = CliRunner().invoke(app, args).exit_code\n"
        "    report.append([args[0], code, [m for m in heavy if m in sys.modules]])\n"
        "print(json.dumps(report))\n"
    )
    helps = [["--help"], ["start", "--help"]]
    views = [["experiments", "--db", url], ["lineage", "--db", url], ["show", str(ids["child"]), "--db", url],
             ["top", "--db", url], ["status", "--db", url], ["diff", str(ids["seed"]), str(ids["child"]), "--db", url],
             ["experiments", "--db", url, "--json"], ["show", str(ids["child"]), "--db", url, "--json"],
             ["config", "show"]]
    out = subprocess.run([sys.executable, "-c", probe, json.dumps(helps + views)], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert [code for _, code, _ in report] == [0] * len(report), report
    assert all(loaded == [] for _, _, loaded in report), report  # the views before the last loaded none of them either


def test_views_read_without_sqlalchemy_and_say_what_is_wrong(tmp_path):
    """The light read path keeps the Store's messages: a missing file, a file that is no database, an empty one,
    an unsupported URL (each one line, exit 1, nothing created)."""
    missing = tmp_path / "none.db"
    result = invoke("experiments", "--db", f"sqlite:///{missing}")
    assert result.exit_code == 1 and f"there is no database at {missing}" in result.output and not missing.exists()
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    assert "is not an SQLite database" in invoke("top", "--db", f"sqlite:///{junk}").output
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()
    assert "is empty: run a search first" in invoke("status", "--db", f"sqlite:///{tmp_path / 'empty.db'}").output
    result = invoke("lineage", "--db", "mysql://u@h/db")
    assert result.exit_code == 1 and "database 'mysql' is not supported" in result.output


def test_workers_default_to_one_thread_and_the_environment_follows(tmp_path):
    from evaluator.sandbox.sandboxed_worker import WorkerLimits, scrubbed_environment

    assert WorkerLimits().threads == 1
    assert scrubbed_environment(tmp_path)["OMP_NUM_THREADS"] == "1"
    assert scrubbed_environment(tmp_path, None, threads=3)["OMP_NUM_THREADS"] == "3"


def test_export_header_names_data_and_scale():
    from evolve.export.script import ExportStatistics

    numbers = dict(runs=3, accuracy_mean=0.95, accuracy_std=0.01, accuracy_ci_low=0.93, accuracy_ci_high=0.97,
                   accuracy_lower_bound=0.935, confidence=0.95, time_mean=3.0, time_std=0.1, device="cpu", torch_version="2")
    tiny = ExportStatistics(**numbers, data="synthetic", scale="tiny").conditions()
    assert tiny.startswith("synthetic data, tiny scale") and "say nothing about CIFAR-10" in tiny
    assert ExportStatistics(**numbers, data="cifar10", scale="full").conditions() == "CIFAR-10, full scale"


def test_the_plan_counts_the_pairs_the_next_attempt_really_runs(tmp_path):
    """The loop raises promotion.pairs to what the attempt's alpha needs (6 for the first at 5 %);
    the plan printed before a search says the same, not the smaller setting."""
    from evaluator.component_set import ComponentSet
    from evolve.cli.start_command import plan
    from evolve.config import ExperimentConfig
    from evolve.database import Store

    config = ExperimentConfig(promotion={"pairs": 2}, harness={"device": "cpu", "data": "synthetic"})
    with Store.open(f"sqlite:///{tmp_path}/plan.db") as store:
        experiment = store.create_experiment("plan", ["hyperparams"], {}, "baseline", "cpu",
                                             seed_sources=ComponentSet.shipped("baseline").sources)
        assert plan(config, store, experiment, 1).runs_per_promotion == 4 * 6
        more = config.model_copy(update={"promotion": config.promotion.model_copy(update={"pairs": 9})})
        assert plan(more, store, experiment, 1).runs_per_promotion == 4 * 9


def test_the_panel_names_the_generation_of_the_latest_proposal():
    """Four proposals of two per generation are generations 1 and 2: the panel said "generation 3 of 2"."""
    from evolve.search.panel import latest_generation

    assert [latest_generation(n, 2) for n in range(6)] == [0, 1, 1, 2, 2, 3]
    assert latest_generation(4, 2) == 2 and latest_generation(1, 4) == 1
