"""Shipped component sets without copies: a set folder holds the modules it changes and names its base
in set.toml; the loader resolves it as its base's modules with its own in place.

The pins below are the sha256 of each module's text as the sets were shipped when every folder held
all six modules in full: resolving a set must give those texts byte for byte, so no number any
benchmark records can change.
"""

import fnmatch
import hashlib
import json
import tomllib
from pathlib import Path

import pytest

import components
from components import COMPONENT_NAMES, SET_FILE, SHIPPED_SETS, shipped_set_dir
from evaluator.component_set import ComponentError, ComponentSet

PINNED = {
    "baseline": {
        "newton_schulz": "6a30f9af2c210babdef11573f85df2ea9a53e6a068a11d3a7deceeb0ccf2ad9c",
        "optimizer": "91ac9b81d4acaa24f17fefb00c9ed5b3d930249986265b73cbf7565172d82320",
        "architecture": "14abe6c6e66e3112114167cec9a4c8f2a7a0b5a6038f1df54ee9394a6f7e3310",
        "augmentation": "cd05f5c253602087ab95f0e23a6c584c384801a2f601a1bb388533cc869fbb83",
        "tta": "4304e236f4fa230d1d081e24ca9e5250d6af9d5c88696b63c5fdf76e813a9f5f",
        "hyperparams": "46a091c2eb5ce6aa62b0ff31183ab1c5ff2757db9ef1db83ee39f841b5bc67b2",
    },
    "record": {
        "newton_schulz": "8b8c3d12b8d7e14202922bd244f599b6f87a67f2b9c7da95daaca778cfd0ddc0",
        "optimizer": "a70c36b77c2b2173caf56911a4201e03b4e3417c0f3363638dcb70d67b39c6e6",
        "architecture": "29eb8bc4799a672a74a8e2c19f8e6e6d557018aad85b1e6d3d7da3add13f2bbb",
        "augmentation": "9717d394fc9aebb21d3a3b90375958a1aeeea44989a7828772ba8fcfa37ab258",
        "tta": "2636b69619329bd11c088f86dfb9af4ad293c24a774c08edcbc2ff7f1c327b62",
        "hyperparams": "dc4bd58d4940d98007b6552142cf79201cc990869593a22546b28234207341cf",
    },
    "frontier": {
        "newton_schulz": "8b8c3d12b8d7e14202922bd244f599b6f87a67f2b9c7da95daaca778cfd0ddc0",
        "optimizer": "a70c36b77c2b2173caf56911a4201e03b4e3417c0f3363638dcb70d67b39c6e6",
        "architecture": "b40b2543213fa5937721454bede60c95687d244bc5c79c8db64a534fd9d65755",
        "augmentation": "c10419c447c39cfa37f1c9185cfa35821c49b54f9cd63777a058a1d55a8e903c",
        "tta": "2636b69619329bd11c088f86dfb9af4ad293c24a774c08edcbc2ff7f1c327b62",
        "hyperparams": "9a7e2935dd95a0cc465d59a36d7a40ea4df9e4731cec39fa60750b99558737bc",
    },
}
# sha256 of json.dumps(sources, sort_keys=True): the whole set, key order and all
PINNED_SETS = {
    "baseline": "27b8d8348d182ef9c550fab2072239adea2befe986faa51f8e06f262b07d7487",
    "record": "03c7f4136d0c61948e3e4c9da8cbae4867d02eca68c7646fbbd7044f0caf5a71",
    "frontier": "a0cee392f1fe101ac77f1271861f367b3881b63f196d1851e3be60f87bd3f407",
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("name", SHIPPED_SETS)
def test_each_shipped_set_resolves_to_the_texts_it_always_had(name):
    component_set = ComponentSet.shipped(name)
    assert list(component_set.sources) == list(COMPONENT_NAMES)
    assert {n: sha256(s) for n, s in component_set.sources.items()} == PINNED[name]
    assert sha256(json.dumps(component_set.sources, sort_keys=True)) == PINNED_SETS[name]
    assert component_set.origin == name
    assert ComponentSet.named(name).sources == component_set.sources


def test_frontier_holds_only_what_it_changes_over_the_record():
    folder = shipped_set_dir("frontier")
    assert (folder / SET_FILE).read_text().strip() == 'base = "record"'
    assert sorted(p.stem for p in folder.glob("*.py")) == ["architecture", "augmentation", "hyperparams"]


@pytest.mark.parametrize("name", SHIPPED_SETS)
def test_no_shipped_folder_holds_a_copy_of_its_base(name):
    """Only byte-identical modules may be dropped, and every one that is identical is."""
    folder = shipped_set_dir(name)
    if not (folder / SET_FILE).exists():
        assert all((folder / f"{n}.py").is_file() for n in COMPONENT_NAMES)
        return
    base = ComponentSet.shipped(folder.joinpath(SET_FILE).read_text().split('"')[1])
    for path in folder.glob("*.py"):
        assert path.read_text() != base.sources[path.stem], f"{path} is a copy of its base's module: delete it"


def write_set(folder, base=None, **modules):
    folder.mkdir(exist_ok=True)
    if base is not None:
        (folder / SET_FILE).write_text(f'base = "{base}"\n')
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(source)
    return folder


def test_a_cycle_of_bases_is_refused_with_one_message(tmp_path, monkeypatch):
    record = ComponentSet.shipped("record").sources
    write_set(tmp_path / "record", "frontier", **{n: record[n] for n in COMPONENT_NAMES if n != "tta"})
    write_set(tmp_path / "frontier", "record", tta=record["tta"])
    monkeypatch.setattr(components, "SETS_DIR", tmp_path)
    with pytest.raises(ComponentError, match=r"frontier -> record -> frontier form a cycle"):
        ComponentSet.shipped("frontier")


def test_an_unknown_or_malformed_base_is_refused_naming_the_file_and_the_fix(tmp_path):
    cases = {
        'base = "nowhere"\n': "names base 'nowhere', which is not a shipped set: name one of baseline, record, frontier",
        'base = "record"\nextra = 1\n': 'must hold one line, base = "NAME"',
        "base = 3\n": 'must hold one line, base = "NAME"',
        "base = record\n": "does not parse",
    }
    for text, message in cases.items():
        folder = write_set(tmp_path / "mine", tta="x = 1\n")
        (folder / SET_FILE).write_text(text)
        for load in (ComponentSet.named, lambda spec: ComponentSet.from_folder(tmp_path / "mine")):
            with pytest.raises(ComponentError, match=message) as e:
                load(str(folder))
            assert str(folder / SET_FILE) in str(e.value)


def test_a_folder_without_a_base_must_hold_every_module(tmp_path):
    folder = write_set(tmp_path / "half", tta="x = 1\n")
    with pytest.raises(ComponentError, match=f"has no newton_schulz.py: .*or name its base set in {SET_FILE}"):
        ComponentSet.from_folder(folder)


def test_a_users_folder_may_name_another_base(tmp_path):
    record = ComponentSet.shipped("record").sources
    tta = record["tta"] + "# mine\n"
    folder = write_set(tmp_path / "over-record", "record", tta=tta)
    component_set = ComponentSet.named(str(folder))
    assert component_set.sources == {**record, "tta": tta} and component_set.origin == str(folder)
    assert ComponentSet.from_folder(folder).sources == component_set.sources


def test_a_folder_naming_a_base_is_refused_over_another_set(tmp_path):
    """`evolve eval FOLDER --components X`: the folder's modules over X, which must be the base it names."""
    frontier = ComponentSet.shipped("frontier")
    record = ComponentSet.shipped("record")
    assert record.with_folder(shipped_set_dir("frontier"))[0].sources == frontier.sources
    with pytest.raises(ComponentError, match="names record as its base: evaluate it over that set, --components record"):
        ComponentSet.shipped("baseline").with_folder(shipped_set_dir("frontier"))
    only, found = ComponentSet.shipped("baseline").with_folder(shipped_set_dir("frontier"), only="augmentation")
    assert found == ["augmentation"] and only.sources["augmentation"] == frontier.sources["augmentation"]


def test_the_package_ships_every_file_of_every_set():
    """An installed package must hold set.toml and the modules, or a set resolves to a missing file."""
    pyproject = tomllib.loads((Path(components.__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["components"]
    for name in SHIPPED_SETS:
        for path in shipped_set_dir(name).iterdir():
            relative = f"{name}/{path.name}"
            if path.is_file() and path.suffix in (".py", ".toml", ".md"):
                assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"pyproject.toml's package data lacks {relative}"
