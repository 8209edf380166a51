"""The attributes of the AGR prompt read from a face prior: one function for training and evaluation alike."""

from __future__ import annotations

import numpy as np

from emollama.faces.contract import AGE_GROUPS, GENDERS, AGRAttributes, FacePrior


def agr_from_prior(prior: FacePrior | None) -> AGRAttributes | None:
    """Age group and gender from the prior's probabilities, averaged over valid frames (a soft vote for videos).

    The one source of the AGR prompt's attributes for training (`data.agr='prior'`) and evaluation, and of the
    predicted groups evaluation reports. Confidences are the averaged probabilities; `render_agr` drops attributes
    below its threshold. Race is left out: the prior's race head has no agreed class names yet. None when there is
    no prior, no valid frame, or neither distribution has the expected width.
    """
    if prior is None:
        return None
    valid = np.ones(prior.num_frames, bool) if prior.valid is None else np.asarray(prior.valid, bool)
    if not valid.any():
        return None
    age = np.asarray(prior.age_probs, np.float32)[valid].mean(0)
    gender = np.asarray(prior.gender_probs, np.float32)[valid].mean(0)
    kw = {}
    if len(age) == len(AGE_GROUPS) and age.sum() > 0:
        kw.update(age_group=AGE_GROUPS[int(age.argmax())], age_confidence=float(age.max()))
    if len(gender) == len(GENDERS) and gender.sum() > 0:
        kw.update(gender=GENDERS[int(gender.argmax())], gender_confidence=float(gender.max()))
    return AGRAttributes(**kw) if kw else None


def predicted_agr(prior: FacePrior | None) -> dict[str, str]:
    """{"predicted_age", "predicted_gender"} for the report: the groups of `agr_from_prior` (the attributes the AGR
    prompt is built from, as in training), without its confidence threshold.

    Empty for no prior and for synthetic priors, whose "age" and "gender" are random numbers, not predictions.
    """
    if prior is None or (prior.meta or {}).get("backend") == "synthetic":
        return {}
    valid = np.ones(prior.num_frames, bool) if prior.valid is None else np.asarray(prior.valid, bool)
    if not valid.any():
        return {"predicted_age": "no face", "predicted_gender": "no face"}
    attrs = agr_from_prior(prior)
    if attrs is None:
        return {}
    return {k: v for k, v in (("predicted_age", attrs.age_group), ("predicted_gender", attrs.gender)) if v is not None}
