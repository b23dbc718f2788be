"""Signals -> a confidence in [0, 1], and which calibration makes it one.

Without a calibration that applies to the models in use, the confidence is a fixed blend
of the signals (`BlendScorer`) and is reported as uncalibrated. A `Calibration` (fitted by
ragqa.evaluation.calibrate; plain JSON: coefficients, not a pickle) turns the signals into
the probability that the answer is right and carries the thresholds Learn-then-Test
certified. `resolve` finds the one that applies: the index's own, else one shipped in
ragqa/calibrations/ for the same models; applying it needs numpy only."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .signals import FEATURES

log = logging.getLogger(__name__)

FILENAME = "calibration.json"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "calibrations"


class Scorer(Protocol):
    calibrated: bool

    def score(self, signals: dict[str, Any]) -> float: ...


class BlendScorer:
    """The uncalibrated default: a fixed blend of retrieval strength and grounding."""

    calibrated = False

    def score(self, signals: dict[str, Any]) -> float:
        top = float(signals.get("retrieval_top", 0.0))
        retrieval = 1 / (1 + math.exp(-(top - 0.4) * 10))  # 0.5 at cosine 0.4
        grounding = float(signals.get("grounding", 0.0))
        support = float(signals.get("citation_support", 0.0))
        numbers_ok = 1.0 if signals.get("numbers_supported", False) else 0.0
        value = 0.35 * retrieval + 0.35 * grounding + 0.2 * support + 0.1 * numbers_ok
        return max(0.0, min(1.0, value))



def features(signals: dict[str, Any], names: Sequence[str] = FEATURES) -> list[float | None]:
    out: list[float | None] = []
    for name in names:
        value = signals.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(None)
        else:
            out.append(float(value))
    return out


@dataclass
class Calibration:
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float
    target_risk: float
    delta: float
    models: dict[str, Any]  # identities of the generator and the embedder it was fitted with
    fitted: dict[str, Any] = field(default_factory=dict)  # what it was fitted on, and the figures measured
    format: int = 1
    # a threshold certified the same way for each of RISK_LEVELS, so that a user may choose
    # another target risk (RAGQA_TARGET_RISK) without refitting; 1.01 where none could be
    thresholds: dict[str, float] = field(default_factory=dict)

    def threshold_for(self, target_risk: float) -> float | None:
        """The certified threshold for this target risk, None if it was not computed."""
        if abs(target_risk - self.target_risk) < 1e-9:
            return self.threshold
        return self.thresholds.get(f"{target_risk:g}")

    # --- applying --------------------------------------------------------------------

    def probability(self, signals: dict[str, Any]) -> float:
        z = self.intercept
        for x, m, s, w in zip(features(signals, self.features), self.mean, self.scale, self.coef):
            z += w * (((m if x is None else x) - m) / s)
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    def applies_to(self, models: dict[str, Any]) -> str | None:
        """None when fitted for these models, else why not."""
        for role in ("generator", "embedder"):
            mine, theirs = self.models.get(role, {}), models.get(role, {})
            for key in mine:
                if key in theirs and mine[key] != theirs[key]:
                    return f"it was fitted for {role} {mine.get('name')!r}, not {theirs.get('name')!r}"
        return None

    # --- storing ---------------------------------------------------------------------

    def save(self, path: Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"cannot read the calibration {path}: {e}") from None


class CalibratedScorer:
    """The Scorer (ragqa.answer.policy) backed by a fitted Calibration."""

    calibrated = True

    def __init__(self, calibration: Calibration):
        self.calibration = calibration

    def score(self, signals: dict[str, Any]) -> float:
        return self.calibration.probability(signals)


Stored = Callable[[dict[str, Any]], "Calibration | None"]  # the reviews' certificate for these models, if any


def find(index_dir: Path, models: dict[str, Any], stored: Stored | None = None) -> tuple[Calibration | None, str | None]:
    """The calibration to use for an index: its own (the newer of the one certified from
    reviews, kept in its database, and its calibration.json), else a bundled one fitted for
    the same models. Returns (calibration or None, a warning or None)."""
    own: list[Calibration] = []
    warning = None
    if stored is not None:
        try:
            reviewed = stored(models)
        except Exception as e:  # an unreadable database never stops an answer: it is withheld instead
            log.warning("cannot read the certificate from reviews: %s", e)
            reviewed = None
        if reviewed is not None:
            own.append(reviewed)
    path = Path(index_dir) / FILENAME
    if path.is_file():
        cal = Calibration.load(path)
        why = cal.applies_to(models)
        if why is None:
            own.append(cal)
        else:
            warning = f"the calibration in {path} does not apply: {why}; confidence is uncalibrated"
    if own:
        return max(own, key=lambda c: str(c.fitted.get("created_at", ""))), None
    if warning:
        return None, warning
    return shipped(models), None


def shipped(models: dict[str, Any]) -> Calibration | None:
    """The calibration shipped in ragqa/calibrations/ for these models, if any."""
    for bundled in sorted(BUNDLED_DIR.glob("*.json")):
        cal = Calibration.load(bundled)
        if cal.applies_to(models) is None:
            return cal
    return None


def resolve(choice: str, index_dir: Path, models: Callable[[], dict[str, Any]],
            stored: Stored | None = None) -> tuple[Calibration | None, str | None]:
    """The calibration that applies for the setting `choice` (auto, off, or a file), and a
    warning when one exists but does not apply. `models` gives the identities of the
    generator and embedder in use (read only when a calibration is looked at); `stored`
    reads the certificate from reviews in the index's database."""
    if choice == "off":
        return None, None
    if choice == "auto":
        return find(index_dir, models(), stored)
    found = Calibration.load(Path(choice))
    why = found.applies_to(models())
    if why is None:
        return found, None
    return None, f"the calibration {choice} does not apply: {why}"
