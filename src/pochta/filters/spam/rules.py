"""Rules that add to the classifier's score: what the message and the earlier checks say, in points.

Points follow SpamAssassin's scale (5 is "probably spam"). Each rule that fires is named in the
``tests=`` list of ``X-Spam-Status``. Pure: DNS list answers come in as arguments (dnsbl.py asks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pochta.mail.headers import parse_date

from .tokens import Features

# The Generic Test for Unsolicited Bulk Email: a message holding it is spam, whatever else it says.
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

BAYES_POINTS = 10.0  # the classifiers' log-odds z gives BAYES_POINTS * tanh(z / LOGIT_SCALE): -10 … +10
# Chosen so that 5 points (the default junk threshold) fall at the log-odds above which 5-fold
# cross-validation on the training half left 0.1% of the ham: 6.20, the median over 8 fold seeds
# (3.83-7.59) of the linear model trained in 3 orders, 11 the nearest round scale (10 * tanh(6.04 / 11)
# = 5.0; 6.20 would be 11.29, within the seeds' spread). With one order it was
# 4.97 (scale 9), and 6.06 (11) before the header's own block and part in the Fisher classifier.
LOGIT_SCALE = 11.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    name: str
    points: float
    detail: str = ""


# RFC 8601 result words of the auth check (facts "spf", "dkim", "dmarc") → points.
_AUTH_POINTS: Mapping[tuple[str, str], float] = {
    ("spf", "fail"): 2.0,
    ("spf", "softfail"): 0.7,
    ("spf", "permerror"): 0.5,
    ("dkim", "fail"): 1.0,
    ("dkim", "permerror"): 0.5,
    ("dmarc", "fail"): 3.0,
}
DNSBL_POINTS = 4.0  # per list naming the connecting IP
URIBL_POINTS = 4.0  # per list naming a linked domain


def bayes_hit(logit: float, *, is_trained: bool) -> Hit | None:
    """The classifiers' points for log-odds `logit`, named by the probability as SpamAssassin's BAYES_nn."""
    if not is_trained:
        return None
    points = round(BAYES_POINTS * math.tanh(logit / LOGIT_SCALE), 2)
    probability = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))
    return Hit(name=f"BAYES_{min(99, int(probability * 100)):02d}", points=points)


def logit_of_points(points: float) -> float:
    """The log-odds that bayes_hit turns into these points (strictly within ±BAYES_POINTS)."""
    share = max(-0.999999, min(0.999999, points / BAYES_POINTS))
    return LOGIT_SCALE * math.atanh(share)


def message_hits(features: Features, facts: Mapping[str, str]) -> list[Hit]:
    """The rules over the message itself and the authentication results."""
    hits: list[Hit] = []
    if GTUBE in features.text or GTUBE in features.headers.get("subject", ""):
        hits.append(Hit(name="GTUBE", points=1000.0))
    for check in ("spf", "dkim", "dmarc"):
        result = facts.get(check, "").lower()
        points = _AUTH_POINTS.get((check, result))
        if points is not None:
            hits.append(Hit(name=f"{check.upper()}_{result.upper()}", points=points))
    if facts.get("dmarc", "").lower() == "fail" and facts.get("dmarc.policy", "").lower() == "reject":
        hits.append(Hit(name="DMARC_REJECT", points=3.0))
    headers = features.headers
    if "date" not in headers:
        hits.append(Hit(name="MISSING_DATE", points=1.0))
    elif parse_date(headers["date"]) is None:
        hits.append(Hit(name="INVALID_DATE", points=1.0))
    if "message-id" not in headers:
        hits.append(Hit(name="MISSING_MID", points=1.0))
    elif "@" not in headers["message-id"] or not headers["message-id"].strip().startswith("<"):
        hits.append(Hit(name="INVALID_MSGID", points=1.0))
    if "from" not in headers:
        hits.append(Hit(name="MISSING_FROM", points=2.0))
    elif "@" not in headers["from"]:
        hits.append(Hit(name="FROM_NO_ADDRESS", points=1.5))
    if "subject" not in headers:
        hits.append(Hit(name="MISSING_SUBJECT", points=0.5))
    if features.html_parts and not features.text_parts:
        hits.append(Hit(name="HTML_ONLY", points=0.5))
    if features.link_mismatches:
        # Weak: on the training half it fired on 40 ham (newsletters linking through click trackers) and 13 spam.
        hits.append(Hit(name="LINK_TEXT_MISMATCH", points=0.3, detail=str(features.link_mismatches)))
    return hits


def list_hits(dnsbl: Sequence[str], uribl: Sequence[str]) -> list[Hit]:
    """Hits for the DNS blocklists that listed the connecting IP (`dnsbl`) or a linked domain (`uribl`)."""
    hits = [Hit(name="RCVD_IN_DNSBL", points=DNSBL_POINTS, detail=zone) for zone in dnsbl]
    hits += [Hit(name="URIBL_BLOCKED", points=URIBL_POINTS, detail=zone) for zone in uribl]
    return hits


def spamtest(score: float, *, junk_threshold: float, reject_threshold: float) -> int:
    """RFC 5235's 1..10 scale (0 is "not tested"): 1 up to score 0, 5 at the junk threshold, 10 at reject."""
    if score <= 0:
        return 1
    if score < junk_threshold:
        return 1 + int(4 * score / junk_threshold)
    if score < reject_threshold:
        return 5 + int(5 * (score - junk_threshold) / (reject_threshold - junk_threshold))
    return 10
