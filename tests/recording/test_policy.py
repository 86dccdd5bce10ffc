"""The recording policy, pure: who is asked for consent, and what the call record says at the bridge."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain.recording import (
    CAMPAIGN, NOT_SELECTED, OFF, ON_DEMAND, RECORDED, REFUSED, SAMPLED, Demand, RecordingPolicy, RecordingSpec,
    at_bridge, draw, select,
)

PARIS = ZoneInfo("Europe/Paris")
NOON = dt.datetime(2026, 3, 10, 11, 0, tzinfo=dt.timezone.utc)


def spec(**kw) -> RecordingSpec:
    return RecordingSpec(RecordingPolicy(**kw))


def test_no_policy_and_off_ask_nobody():
    assert not select(None, "+33100000001", "c1", NOON, PARIS).ask
    assert select(spec(mode=OFF), "+33100000001", "c1", NOON, PARIS).reason == "recording off"


@given(st.text(min_size=1, max_size=40))
def test_a_call_is_drawn_the_same_way_every_time(call_id):
    """The draw comes from the call id alone: every node and every replay agree."""
    assert 0 <= draw(call_id) < 100
    assert draw(call_id) == draw(call_id)
    policy = spec(mode=SAMPLED, percent=30)
    assert select(policy, "+33100000001", call_id, NOON, PARIS) == select(policy, "+33100000001", call_id, NOON, PARIS)


@settings(max_examples=30)
@given(st.floats(min_value=5, max_value=95))
def test_sampling_asks_about_the_share_of_calls_given(percent):
    asked = sum(select(spec(mode=SAMPLED, percent=percent), "+33100000001", f"call-{i}", NOON, PARIS).ask
                for i in range(4000))
    assert abs(asked / 4000 * 100 - percent) < 3.5


def test_a_campaign_asks_only_within_its_local_days():
    campaign = spec(mode=CAMPAIGN, first_day=dt.date(2026, 3, 10), last_day=dt.date(2026, 3, 12))
    # 23:30 UTC on 9 March is already 10 March in Paris: inside; 23:30 UTC on 12 March is the 13th.
    assert select(campaign, "+33100000001", "c", dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.timezone.utc), PARIS).ask
    assert not select(campaign, "+33100000001", "c", dt.datetime(2026, 3, 9, 22, 30, tzinfo=dt.timezone.utc),
                      PARIS).ask
    late = select(campaign, "+33100000001", "c", dt.datetime(2026, 3, 12, 23, 30, tzinfo=dt.timezone.utc), PARIS)
    assert not late.ask and late.reason == "campaign ended on 2026-03-12"


def test_a_number_with_its_own_policy_wins_over_the_practice():
    both = RecordingSpec(RecordingPolicy(mode=SAMPLED, percent=100), {"+33100000002": RecordingPolicy(mode=OFF)})
    assert select(both, "+33100000001", "c", NOON, PARIS).ask
    assert not select(both, "+33100000002", "c", NOON, PARIS).ask


def test_at_the_bridge_refusal_and_selection_decide_the_status():
    asked = select(spec(mode=SAMPLED, percent=100), "+33100000001", "c", NOON, PARIS)
    assert at_bridge(asked, False, "alice", "p", (), NOON) == AtBridge_(True, RECORDED)
    assert at_bridge(asked, True, "alice", "p", (), NOON).status == REFUSED
    unasked = select(spec(mode=OFF), "+33100000001", "c", NOON, PARIS)
    assert at_bridge(unasked, False, "alice", "p", (), NOON).status == NOT_SELECTED


def AtBridge_(record: bool, status: str):
    class Match:
        def __eq__(self, other):
            return other.record is record and other.status == status
    return Match()


def test_on_demand_records_only_the_secretary_under_a_live_request():
    """Every caller is told; only the calls the named secretary answers while the request lasts
    (for that practice, or any) are recorded."""
    asked = select(spec(mode=ON_DEMAND), "+33100000001", "c", NOON, PARIS)
    assert asked.ask
    demand = Demand(7, "alice", "p", NOON - dt.timedelta(hours=1), NOON + dt.timedelta(hours=1), "sup")
    assert at_bridge(asked, False, "alice", "p", [demand], NOON).record
    assert not at_bridge(asked, False, "bob", "p", [demand], NOON).record
    assert not at_bridge(asked, False, "alice", "other", [demand], NOON).record
    assert not at_bridge(asked, False, "alice", "p", [demand], NOON + dt.timedelta(hours=1)).record
    anywhere = Demand(8, "alice", None, NOON, NOON + dt.timedelta(minutes=5), "sup")
    assert at_bridge(asked, False, "alice", "other", [anywhere], NOON).reason == "on demand #8 by sup"
    assert at_bridge(asked, True, "alice", "p", [demand], NOON).status == REFUSED
