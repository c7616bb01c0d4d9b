import math

import pytest

from reidkit.engine.schedule import lr_factor


def test_warmup_then_multistep():
    kw = dict(epochs=120, warmup_epochs=10, warmup_factor=0.01, schedule="multistep", milestones=(40, 70))
    assert lr_factor(0, **kw) == pytest.approx(0.01)
    assert lr_factor(5, **kw) == pytest.approx(0.01 * 0.5 + 0.5)
    assert lr_factor(10, **kw) == 1.0
    assert lr_factor(39, **kw) == 1.0
    assert lr_factor(40, **kw) == pytest.approx(0.1)
    assert lr_factor(70, **kw) == pytest.approx(0.01)


def test_cosine_end_points():
    kw = dict(epochs=20, warmup_epochs=0, schedule="cosine")
    assert lr_factor(0, **kw) == 1.0
    assert lr_factor(10, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(20, **kw) == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="valid: multistep, cosine, constant"):
        lr_factor(0, epochs=1, schedule="poly")
