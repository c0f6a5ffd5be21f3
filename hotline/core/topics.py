"""Which event topics a caller may receive, by role and department, and which it asks for.

Topic names: ``tickets.dept.<DEPT>`` (a department's tickets), ``tickets.by.<username>`` (the
tickets a hotline user created, for "my recent tickets"), ``calls.queues`` (queue changes),
``calls.agents.<username>`` (one agent's state), ``kpi.*`` (wall figures),
``agent.<username>`` (one agent's screen pops), ``kb.*`` (knowledge-base changes),
``hotspots.city`` (hot spots found, merged or dismissed; hotline staff).

A pattern ending in "." covers a whole branch (``calls.`` is every queue and agent change).
A client may ask for fewer topics than it may see: an agent console wants its own screen
pops, state and tickets, not every change in the city. With hundreds of consoles connected,
that is what keeps the gateway's fan-out proportional to what is actually on screen.
"""

from __future__ import annotations

from collections.abc import Iterable

from hotline.core.auth import Principal

_HOTLINE_ROLES = {"agent", "supervisor", "dispatcher", "admin"}


def visible_topic_prefixes(principal: Principal) -> list[str]:
    prefixes: list[str] = []
    if principal.roles & _HOTLINE_ROLES:
        prefixes += ["tickets.", "calls.", "kpi.", "kb.", "hotspots."]
    if "editor" in principal.roles:
        prefixes += ["kb."]
    if "department" in principal.roles:
        prefixes += [f"tickets.dept.{code}" for code in sorted(principal.departments)]
    prefixes.append(f"agent.{principal.username}")
    return sorted(set(prefixes))


def covers(pattern: str, other: str) -> bool:
    """Whether every topic ``other`` matches is also matched by ``pattern``."""
    return other.startswith(pattern) if pattern.endswith(".") else other == pattern


def narrow(visible: Iterable[str], requested: Iterable[str] | None) -> list[str]:
    """The patterns a client gets: what it asked for, within what it may see.

    Nothing asked for means everything visible. A request broader than allowed is cut down
    to the allowed part (a department asking for ``tickets.`` gets its own departments), and a
    request for a topic it may not see yields nothing for that topic, never an error: the
    page works with whatever the role allows. An empty result means "no topic at all", and
    every consumer must treat it so (``events_after`` returns nothing for it).
    """
    visible = sorted(set(visible))
    wanted = sorted({p.strip() for p in requested or () if p.strip()})
    if not wanted:
        return visible
    granted = {w for w in wanted if any(covers(v, w) for v in visible)}
    granted |= {v for v in visible if any(covers(w, v) for w in wanted)}
    # Drop patterns another granted pattern already covers, so each event is matched once.
    return sorted(p for p in granted if not any(q != p and covers(q, p) for q in granted))
