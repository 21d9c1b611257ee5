"""The threshold rules of one series, indexed so that judging a summary looks only at the rules it breaches.

In steady state almost no rule is breached and almost no rule has a state on a series; a summary then costs a few
binary searches (one per field and direction), not one comparison per rule. That keeps a hundred rules within a
few percent of the summariser's own cost.
"""

from __future__ import annotations

import bisect

from shared.alerts.rules import AlertRule

_ABOVE = (">", ">=")
_Ladder = tuple[str, str, list[float], list[AlertRule]]  # field, operator, thresholds ascending, their rules


def _ladder(field: str, op: str, rules: list[AlertRule]) -> _Ladder:
    ordered = sorted(rules, key=lambda rule: rule.value)
    return (field, op, [rule.value for rule in ordered], ordered)


class SeriesRules:
    __slots__ = ("rules", "by_name", "_ladders")

    def __init__(self, rules: tuple[AlertRule, ...]) -> None:
        self.rules = rules
        self.by_name = {rule.name: rule for rule in rules}
        groups: dict[tuple[str, str], list[AlertRule]] = {}
        for rule in rules:
            groups.setdefault((rule.field, rule.op), []).append(rule)
        self._ladders = [_ladder(field, op, members) for (field, op), members in groups.items()]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def breached(self, min_value: float, max_value: float, avg: float) -> list[AlertRule]:
        """The rules whose threshold this summary is past (called for every summary: kept to plain loops)."""
        found: list[AlertRule] = []
        for field, op, values, rules in self._ladders:
            observed = min_value if field == "min" else max_value if field == "max" else avg
            # Most summaries are past no threshold: one comparison with the ladder's lowest (or highest) says so.
            if op in _ABOVE:
                if observed < values[0]:
                    continue
            elif observed > values[-1]:
                continue
            if op == ">":  # threshold < observed
                end = bisect.bisect_left(values, observed)
                if end:
                    found += rules[:end]
            elif op == ">=":  # threshold <= observed
                end = bisect.bisect_right(values, observed)
                if end:
                    found += rules[:end]
            elif op == "<":  # threshold > observed
                start = bisect.bisect_right(values, observed)
                if start < len(values):
                    found += rules[start:]
            else:  # "<=": threshold >= observed
                start = bisect.bisect_left(values, observed)
                if start < len(values):
                    found += rules[start:]
        return found
