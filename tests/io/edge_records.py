"""Records with the edge cases every connector round trip must keep exactly."""

import typing
from typing import Optional

from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import register
from hybridflow.testing import START


@register
class Edge(typing.NamedTuple):
    id: str
    text: Optional[str]
    count: int
    amount: Optional[float]
    flag: bool
    tags: list[str]
    scores: list[float]
    event_time: Timestamp


EDGES = [
    # a window's first microsecond, plain values
    Edge("e0", "plain", 0, 1.5, True, ["a", "b"], [0.1, 0.2], START),
    # unicode, quotes, commas and newlines; the last microsecond of the first minute
    Edge("e1", 'ünïcødé 卡 🚀, "quoted"\nsecond line', -1, 0.1 + 0.2, False, ["ü", ""], [], START + 59.999999),
    # nulls and empty lists; exactly the next window's start
    Edge("e2", None, 2**53 + 1, None, False, [], [-0.0], START + 60),
    # the extremes of 64-bit integers and doubles; the last microsecond of an hour
    Edge("e3", "", -(2**63), 1.7976931348623157e308, True, ["x" * 1000], [5e-324, -1e-300], START + 3599.999999),
    Edge("e4", "big", 2**63 - 1, -123456789.123456, True, ["tab\tand\\backslash"], [1.0], START + 3600),
]
