"""Which event topics a caller may receive, by role and department.

Topic names: ``tickets.dept.<DEPT>`` (a department's tickets), ``tickets.all`` (every ticket
change, for hotline roles), ``calls.*`` (queues and agents), ``kpi.*`` (wall figures),
``agent.<username>`` (one agent's screen pops), ``kb.*`` (knowledge-base changes).
"""

from __future__ import annotations

from hotline.core.auth import Principal

_HOTLINE_ROLES = {"agent", "supervisor", "dispatcher", "admin"}


def visible_topic_prefixes(principal: Principal) -> list[str]:
    prefixes: list[str] = []
    if principal.roles & _HOTLINE_ROLES:
        prefixes += ["tickets.", "calls.", "kpi.", "kb."]
    if "editor" in principal.roles:
        prefixes += ["kb."]
    if "department" in principal.roles:
        prefixes += [f"tickets.dept.{code}" for code in sorted(principal.departments)]
    prefixes.append(f"agent.{principal.username}")
    return sorted(set(prefixes))
