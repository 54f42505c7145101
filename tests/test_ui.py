"""`evolve ui` in a real browser (headless Chromium), over a database that a real CPU search filled.

One small search (the built-in mutator, one generation) fills the database for every test here;
a hostile LLM call and candidate are added through the Store. Screenshots of each page are kept
in test-artifacts/ui/ (or $EVOLVE_TEST_ARTIFACTS).
"""

import math
import time

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from typer.testing import CliRunner

from evaluator.data import synthetic_dataset
from evolve.cli.app import app as cli
from evolve.database import LLMCallRecord, NewCandidate, Store
from evolve.ui.app import create_app
from browser_support import artifacts_dir, chromium, close, running
from database_support import evaluation, rejection

SEARCH = [
    "--set", "candidates_per_generation=2", "--set", "cascade.runs=2", "--set", "cascade.min_runs=2",
    "--set", "score.target=0.2", "--set", "promotion.pairs=2", "--set", "harness.hyperparams.epochs=1",
    "--set", "population.islands=2", "--set", "seed=7", "--set", "cascade.profile=true",
    # The widest error budget allowed: a paired re-measurement needs 3 pairs, not the default 6 (their decisions are
    # not what these tests check; tests/test_null_search.py and test_promotion.py put the rule itself to the test).
    "--set", "promotion.experiment_alpha=0.45",
]
# The one filled database and browser serve every test here: under pytest -n they stay on one worker.
pytestmark = pytest.mark.xdist_group("ui")
HOSTILE_REPLY = (
    "Faster!\n</pre><script>window.__pwned = 'reply';</script>"
    "<img src=x onerror=\"window.__pwned = 'img'\"> & <b>bold</b>"
)
HOSTILE_PROMPT = "Improve this </textarea><script>window.__pwned = 'prompt';</script>"
HOSTILE_ERROR = "line 1: <svg onload=\"window.__pwned = 'error'\"></svg> is not allowed"
HOSTILE_LINE = "NOTE = \"</pre><script>window.__pwned = 'diff';</script>\""


def wait(driver, condition, seconds: float = 20.0, message: str = ""):
    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: condition(d), message)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """The database URL of a finished one-generation CPU search, plus a hostile LLM candidate."""
    folder = tmp_path_factory.mktemp("ui")
    d = synthetic_dataset(200, 50, seed=11)
    data = folder / "small.npz"
    np.savez(data, train_images=d.train_images, train_labels=d.train_labels, test_images=d.test_images,
             test_labels=d.test_labels)
    url = f"sqlite:///{folder / 'evolve.db'}"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            patch.delenv(name, raising=False)
        result = CliRunner().invoke(cli, ["start", "--component", "hyperparams", "--device", "cpu", "--data", str(data),
                                          "--db", url, *SEARCH, "--generations", "1", "--name", "tiny"])
    assert result.exit_code == 0, result.output
    with Store.open(url) as store:
        experiment = store.experiment("tiny")
        candidates = store.candidates(experiment.id)
        parent = candidates[-1]
        call = store.record_llm_call(LLMCallRecord(
            experiment_id=experiment.id, model="scripted <i>model</i>", endpoint="http://127.0.0.1:9/v1",
            prompt=HOSTILE_PROMPT, response=HOSTILE_REPLY, tokens_in=1234, tokens_out=56, latency_seconds=2.5, cost=0.0042,
        ))
        hostile, created = store.add_candidate(NewCandidate(
            experiment_id=experiment.id, component=parent.component, source=parent.source + "\n" + HOSTILE_LINE + "\n",
            origin="llm", parent_id=parent.id, generation=parent.generation + 1, island=parent.island, llm_call_id=call,
        ))
        assert created
        store.record_evaluation(hostile.id, rejection(HOSTILE_ERROR))
    return {"url": url, "experiment": experiment.id, "hostile": hostile.id, "parent": parent.id}


@pytest.fixture(scope="module")
def server(filled):
    with running(create_app(filled["url"])) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    close(driver)


def candidates(url: str, experiment: int):
    with Store.open(url, create=False) as store:
        return store.candidates(experiment)


def open_experiment(browser, server, experiment: int) -> None:
    browser.get(f"{server}/experiments/{experiment}")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.loaded"), message="the experiment data never loaded")


def screenshot(browser, name: str) -> None:
    """The page from its top, the window as tall as the page (within limits), kept as a test artifact."""
    size = browser.get_window_size()
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(size["width"], max(600, min(height + 140, 2800)))
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)  # the charts redraw on resize
    path = artifacts_dir() / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(size["width"], size["height"])
    assert path.stat().st_size > 10_000


def test_experiments_page_lists_the_search(browser, server, filled):
    browser.get(server + "/")
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-experiment='{filled['experiment']}']")
    assert "tiny" in row.text and "hyperparams" in row.text and "baseline" in row.text
    assert "1 champion" in row.text and "$0.0042" in row.text  # candidates by status; the LLM cost of the added call
    screenshot(browser, "experiments")
    row.find_element(By.LINK_TEXT, "tiny").click()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.loaded"))


def test_tree_shows_every_candidate(browser, server, filled):
    open_experiment(browser, server, filled["experiment"])
    stored = {c.id for c in candidates(filled["url"], filled["experiment"])}
    drawn = {node["id"] for node in browser.execute_script("return window.evolveUI.treeNodes()")}
    assert drawn == stored
    screenshot(browser, "experiment")


def test_plot_has_one_point_per_scored_candidate(browser, server, filled):
    open_experiment(browser, server, filled["experiment"])
    scored = [c.id for c in candidates(filled["url"], filled["experiment"]) if c.score is not None and math.isfinite(c.score)]
    points = [p["id"] for p in browser.execute_script("return window.evolveUI.plotPoints()")]
    assert scored and sorted(points) == sorted(scored)


def test_a_large_plot_keeps_every_point_its_tooltip_and_its_link(browser, server, filled):
    """Above 2,000 points the plot is drawn in ECharts' large mode (bench/ui_tree.py: 10,000 candidates);
    here the threshold is lowered so that the small search's plot takes that path."""
    open_experiment(browser, server, filled["experiment"])
    scored = [c for c in candidates(filled["url"], filled["experiment"]) if c.score is not None and math.isfinite(c.score)]
    browser.execute_script("window.evolveUI.state.largePlot = 0; window.evolveUI.drawPlot()")
    assert browser.execute_script("return window.evolveUI.plotCount()") == len(scored)
    assert browser.execute_script("return window.evolveUI.plot.getOption().series.every(s => s.type !== 'scatter' || s.large)")
    browser.execute_script("document.getElementById('plot').scrollIntoView({block: 'center'})")
    target = min(scored, key=lambda c: c.score)  # the lowest point, the one least likely to overlap another
    x, y = browser.execute_script(
        "const n = window.evolveUI.state.byId.get(arguments[0]); const r = document.getElementById('plot').getBoundingClientRect();"
        "const p = window.evolveUI.plot.convertToPixel({gridIndex: 0}, [n.evaluated_at ?? n.created_at, n.score]);"
        "return [r.left + p[0], r.top + p[1]]", target.id)
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(round(x), round(y)).click()
    actions.perform()
    wait(browser, lambda d: d.current_url.endswith(f"/candidates/{target.id}"), message="clicking a large-mode point did not open it")


def click_tree_node(browser, candidate_id: int) -> None:
    """A real pointer click where the chart drew the node (chart coordinates from the page's own ECharts)."""
    browser.execute_script("document.getElementById('tree').scrollIntoView({block: 'center'})")
    left, top = browser.execute_script(
        "const t = document.getElementById('tree'); const r = t.getBoundingClientRect();"
        "return [r.left + t.clientLeft, r.top + t.clientTop]")
    node = next(n for n in browser.execute_script("return window.evolveUI.treeNodes()") if n["id"] == candidate_id)
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(round(left + node["x"]), round(top + node["y"])).click()
    actions.perform()


def test_clicking_a_tree_node_opens_its_diff(browser, server, filled):
    open_experiment(browser, server, filled["experiment"])
    child = filled["parent"]
    click_tree_node(browser, child)
    diff = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#panel pre.diff[data-diff-of='{child}']"),
                message="clicking the node did not show its diff")[0]
    with Store.open(filled["url"], create=False) as store:
        stored = store.candidate(child).diff
    changed = [line for line in stored.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    assert changed and all(line[1:].strip() in diff.text for line in changed)
    screenshot(browser, "experiment-selected")
    browser.find_element(By.CSS_SELECTOR, "#panel a.open").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"pre.diff[data-diff-of='{child}']"))
    assert "Cascade" in browser.page_source and "evolve export --candidate" in browser.find_element(By.ID, "export-command").text
    screenshot(browser, "candidate")


def test_hostile_llm_strings_are_shown_as_text(browser, server, filled):
    browser.get(f"{server}/candidates/{filled['hostile']}")
    assert browser.find_element(By.ID, "llm-reply").text == HOSTILE_REPLY
    assert HOSTILE_LINE in browser.find_element(By.CSS_SELECTOR, "pre.diff").text
    assert 'onload="window.__pwned' in browser.find_element(By.CSS_SELECTOR, "pre.message").text
    page = browser.find_element(By.ID, "candidate")
    assert not page.find_elements(By.TAG_NAME, "script") and not page.find_elements(By.TAG_NAME, "img")
    assert not any(page.find_elements(By.TAG_NAME, tag) for tag in ("svg", "b", "i", "textarea"))
    browser.find_element(By.CSS_SELECTOR, "#llm-call details summary").click()  # open the prompt
    assert browser.find_element(By.CSS_SELECTOR, "#llm-call pre.prompt").text == HOSTILE_PROMPT
    assert browser.execute_script("return window.__pwned === undefined")
    screenshot(browser, "candidate-llm")
    open_experiment(browser, server, filled["experiment"])  # the diff panel over the hostile source
    click_tree_node(browser, filled["hostile"])
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#panel pre.diff[data-diff-of='{filled['hostile']}']"))
    assert HOSTILE_LINE in browser.find_element(By.ID, "panel").text
    assert browser.execute_script("return window.__pwned === undefined")


def test_page_updates_when_a_new_candidate_is_stored(browser, server, filled):
    open_experiment(browser, server, filled["experiment"])
    before = {n["id"] for n in browser.execute_script("return window.evolveUI.treeNodes()")}
    browser.execute_script("document.getElementById('tree').scrollIntoView({block: 'center'})")
    tree = browser.find_element(By.ID, "tree")
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(tree), 0, -400).perform()  # the wheel zooms in
    zoom = lambda d: d.execute_script("return window.evolveUI.tree.getOption().series[0].zoom")  # noqa: E731
    zoomed = wait(browser, lambda d: zoom(d) if (zoom(d) or 1) > 1 else None, message="the mouse wheel did not zoom the tree")
    with Store.open(filled["url"], create=False) as store:
        parent = store.candidate(filled["parent"])
        new, created = store.add_candidate(NewCandidate(
            experiment_id=filled["experiment"], component=parent.component, source=parent.source + "\nLIVE = 1\n", origin="mutator",
            parent_id=parent.id, generation=parent.generation + 1, island=parent.island,
        ))
        assert created
    wait(browser, lambda d: new.id in {n["id"] for n in d.execute_script("return window.evolveUI.treeNodes()")},
         message="the tree never showed the new candidate")
    assert before < {n["id"] for n in browser.execute_script("return window.evolveUI.treeNodes()")}
    assert "1 pending" in browser.find_element(By.ID, "summary").text
    assert zoom(browser) == zoomed  # the reader's zoom survives the redraw
    points = len(browser.execute_script("return window.evolveUI.plotPoints()"))
    with Store.open(filled["url"], create=False) as store:  # once scored, it joins the plot too
        store.record_evaluation(new.id, evaluation([0.95, 0.951], [5.0, 5.1]))
    wait(browser, lambda d: len(d.execute_script("return window.evolveUI.plotPoints()")) == points + 1,
         message="the plot never showed the newly scored candidate")
