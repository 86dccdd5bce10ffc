"""The dialplan's queues, IVR menus, route actions and routes (docs/dialplan.md: queues, ivr, routes)."""

from __future__ import annotations

from callrouter.dialplan.context import Context, prompt_ref
from callrouter.dialplan.errors import did_you_mean
from callrouter.dialplan.fields import DIGITS, join
from callrouter.dialplan.yamlsrc import YMap, YNode, YScalar
from callrouter.domain.model import (
    QUEUE_STRATEGIES,
    Action,
    AnnounceAction,
    CallbackOfferAction,
    EscalateAction,
    ForwardAction,
    HangupAction,
    IvrAction,
    IvrMenu,
    IvrOption,
    Overflow,
    Queue,
    QueueAction,
    Routes,
    VoicemailAction,
)

PRIMARY_ACTIONS = ("ivr", "queue", "voicemail", "forward", "callback_offer", "escalate", "hangup")
WORD_ACTIONS = {"hangup": HangupAction(), "voicemail": VoicemailAction(), "callback_offer": CallbackOfferAction()}


def read_queues(ctx: Context, node: YNode | None) -> dict[str, Queue]:
    r = ctx.reader
    out: dict[str, Queue] = {}
    for qname, qnode, path in r.named(node, "queues"):
        q = r.mapping(qnode, path, ("label", "priority", "wrap_up", "announce_interval", "strategy", "shared"),
                      required=("label",))
        if q is None:
            continue
        out[qname] = Queue(qname, r.text(q.get("label"), join(path, "label")) or qname,
                           r.integer(q.get("priority"), join(path, "priority"), 0, 0, 100),
                           r.duration(q.get("wrap_up"), join(path, "wrap_up"), 10.0, hi=600),
                           r.duration(q.get("announce_interval"), join(path, "announce_interval"), 45.0, hi=600),
                           r.one_of(q.get("strategy"), join(path, "strategy"), QUEUE_STRATEGIES, "longest_idle"),
                           r.ident(q.get("shared"), join(path, "shared")) if q.get("shared") is not None else None)
    return out


def read_menus(ctx: Context, node: YNode | None) -> dict[str, IvrMenu]:
    r = ctx.reader
    out: dict[str, IvrMenu] = {}
    for mname, mnode, path in r.named(node, "ivr"):
        menu = r.mapping(mnode, path, ("prompt", "options", "timeout", "retries", "invalid_prompt", "on_timeout"),
                         required=("prompt", "options"))
        if menu is None:
            continue
        prompt = prompt_ref(ctx, menu.get("prompt"), join(path, "prompt"))
        invalid = prompt_ref(ctx, menu.get("invalid_prompt"), join(path, "invalid_prompt")) if "invalid_prompt" in menu.items else None
        on_timeout = read_action(ctx, menu.get("on_timeout"), join(path, "on_timeout")) if "on_timeout" in menu.items else None
        options: dict[str, IvrOption] = {}
        onode = r.mapping(menu.get("options"), join(path, "options"), DIGITS, line=menu.line)
        if onode is not None:
            if not onode.items:
                r.error(onode.line, join(path, "options"), "a menu needs at least one option")
            for digit, opt in onode.items.items():
                if digit in DIGITS:
                    option = _option(ctx, opt, join(join(path, "options"), digit), digit)
                    if option:
                        options[digit] = option
        out[mname] = IvrMenu(mname, prompt or "", options,
                             r.duration(menu.get("timeout"), join(path, "timeout"), 6.0, hi=60),
                             r.integer(menu.get("retries"), join(path, "retries"), 2, 0, 5),
                             invalid, on_timeout)
    return out


def _option(ctx: Context, node: YNode, path: str, digit: str) -> IvrOption | None:
    r = ctx.reader
    m = r.mapping(node, path, ("reason", "tier", "then", "announce", *PRIMARY_ACTIONS))
    if m is None:
        return None
    reason = r.text(m.get("reason"), join(path, "reason"), required=False)
    tier = r.text(m.get("tier"), join(path, "tier"), required=False)
    ctx.ref("tier", tier, m.get("tier"), join(path, "tier"))
    action_keys = [k for k in m.items if k not in ("reason", "tier")]
    if action_keys:
        action = _action_from_map(ctx, m, path, ignore=("reason", "tier"))
    elif tier:
        action = EscalateAction(tier)
    else:
        r.error(m.line, path, f"option {digit} does nothing: give an action (queue, ivr, announce, voicemail, "
                              f"forward, callback_offer, escalate, hangup) or a tier")
        return None
    if action is None:
        return None
    return IvrOption(digit, action, reason, tier)


def read_action(ctx: Context, node: YNode | None, path: str) -> Action | None:
    """An action: a word (hangup, voicemail, callback_offer) or a mapping with one primary key."""
    r = ctx.reader
    if node is None:
        return None
    if isinstance(node, YScalar) and isinstance(node.value, str):
        if node.value in WORD_ACTIONS:
            return WORD_ACTIONS[node.value]
        r.error(node.line, path, f'"{node.value}" is not an action{did_you_mean(node.value, WORD_ACTIONS)}; '
                                 f"write hangup, voicemail, callback_offer, or a mapping such as {{queue: general}}")
        return None
    m = r.mapping(node, path, ("announce", "then", *PRIMARY_ACTIONS))
    if m is None:
        return None
    return _action_from_map(ctx, m, path, ignore=())


def _action_from_map(ctx: Context, m: YMap, path: str, ignore: tuple[str, ...]) -> Action | None:
    r = ctx.reader
    primary = [k for k in m.items if k in PRIMARY_ACTIONS]
    announce = prompt_ref(ctx, m.get("announce"), join(path, "announce")) if "announce" in m.items else None
    if len(primary) > 1:
        r.error(m.line, path, f"give one action, not several ({', '.join(primary)})")
        return None
    if not primary:
        if announce is None:
            if "announce" not in m.items:
                r.error(m.line, path, "no action given (queue, ivr, announce, voicemail, forward, callback_offer, escalate, hangup)")
            return None
        then = read_action(ctx, m.get("then"), join(path, "then")) if "then" in m.items else None
        return AnnounceAction(announce, then)
    if "then" in m.items:
        r.error(m.key_lines["then"], join(path, "then"), f'"then" goes with an announce alone, not with {primary[0]}')
    kind = primary[0]
    node = m.get(kind)
    kpath = join(path, kind)
    if kind == "ivr":
        name = r.text(node, kpath)
        ctx.ref("menu", name, node, kpath)
        inner: Action | None = IvrAction(name) if name else None
    elif kind == "queue":
        name = r.text(node, kpath)
        ctx.ref("queue", name, node, kpath)
        return QueueAction(name, announce) if name else None
    elif kind == "voicemail":
        r.boolean(node, kpath, True)
        return VoicemailAction(announce)
    elif kind == "forward":
        number = r.phone(node, kpath)
        return ForwardAction(number, announce) if number else None
    elif kind == "callback_offer":
        r.boolean(node, kpath, True)
        return CallbackOfferAction(announce)
    elif kind == "escalate":
        tier = r.text(node, kpath)
        ctx.ref("tier", tier, node, kpath)
        inner = EscalateAction(tier) if tier else None
    else:
        r.boolean(node, kpath, True)
        inner = HangupAction()
    if inner is not None and announce:
        return AnnounceAction(announce, inner)
    return inner


def read_routes(ctx: Context, node: YNode | None) -> Routes | None:
    r = ctx.reader
    m = r.mapping(node, "routes", ("open", "closed", "holiday", "closure", "overflow"), required=("open", "closed"))
    if m is None:
        return None
    acts = {k: read_action(ctx, m.get(k), join("routes", k)) for k in ("open", "closed", "holiday", "closure") if k in m.items}
    overflow = None
    if "overflow" in m.items:
        o = r.mapping(m.get("overflow"), "routes.overflow", ("wait_max", "queue_max", "then"), required=("then",))
        if o is not None:
            then = read_action(ctx, o.get("then"), "routes.overflow.then")
            if then is not None:
                overflow = Overflow(r.duration(o.get("wait_max"), "routes.overflow.wait_max", 120.0, hi=3600),
                                    r.integer(o.get("queue_max"), "routes.overflow.queue_max", 10, 1, 1000), then)
    if acts.get("open") is None or acts.get("closed") is None:
        return None
    return Routes(acts["open"], acts["closed"], acts.get("holiday"), acts.get("closure"), overflow)
