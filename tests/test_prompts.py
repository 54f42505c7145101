import pytest

from prompts import load_template


def test_system_template_fills_in(tmp_path):
    text = load_template("system").format(
        target_percent=94, gpu="H100", confidence_percent=95, component="optimizer", interface="build_optimizer(...)"
    )
    assert "optimizer" in text and "{" not in text
    with pytest.raises(FileNotFoundError, match="copy the shipped one"):
        load_template("system", tmp_path)
