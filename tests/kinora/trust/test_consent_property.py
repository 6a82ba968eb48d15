"""Property: no video is ever published or served that uses a cameo without consent valid at that moment.

Hypothesis drives random sequences of registrations, permission changes, approvals, follows and
unfollows, restrictions, the approve-each-video switch, revocations, generation requests (admitted
now, published later, so consent can change while a clip "generates"), owner approvals and
removals of uses, consent sweeps and feed serves, against the real store and code. A plain-Python
model of consent, written independently of ``kinora.trust.consent``, is the oracle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings as hsettings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kinora import generation
from kinora.feed import feed_page
from kinora.settings import Settings
from kinora.stores import cameos as cameo_store
from kinora.stores import catalog
from kinora.stores import users as user_store
from kinora.stores.bundle import Stores
from kinora.trust import cameos as service
from kinora.trust.ledger import LedgerKey, verify
from kinora.trust.sweep import find_lapsed, withdraw

USERS = ["u0", "u1", "u2", "u3"]
PROMPTS = {"a walk in the park": False, "a speech at a political rally": True, "cooking pasta": False}
LEVELS = ["only_me", "approved", "mutuals", "everyone"]
_counter = itertools.count()


@dataclass
class ModelCameo:
    owner: str
    permission: str
    approved: set[str] = field(default_factory=set)
    restricted: bool = False  # "no political content"
    require_approval: bool = False
    revoked: bool = False


def _stamped(video_id: str):
    """What the stamping step hands to publish() (the media itself does not matter here)."""
    from kinora.provenance.stamp import StampedVideo
    from kinora.provenance.watermark import content_id_for

    return StampedVideo(video_id=video_id, media_key="videos/none.mp4", thumbnail_key="videos/none.jpg", sha256="0" * 64,
                        model_family="ltx2", model_version="tiny-test", c2pa_state="Valid", claim_generator="test",
                        visible_mark="test", content_id=content_id_for(video_id))


class ConsentMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        n = next(_counter)
        import tempfile
        from pathlib import Path

        self.tmp = tempfile.TemporaryDirectory()
        self.settings = Settings(home=Path(self.tmp.name) / f"h{n}", consent={"feed_page_max": 1000})
        self.stores = Stores.open(self.settings)
        with self.stores.engine.begin() as conn:
            for u in USERS:
                user_store.upsert_user(conn=conn, user_id=u, handle=u, display_name=u)
        self.cameos: dict[str, ModelCameo] = {}  # handle -> model
        self.follows: set[tuple[str, str]] = set()
        self.pending: list[generation.GenerationSpec] = []
        self.videos: dict[str, tuple[str, list[str], str]] = {}  # video id -> (creator, handles, prompt)
        self.dead: set[str] = set()  # videos removed by an owner or withdrawn (never to return)
        self.use_state: dict[tuple[str, str], str] = {}  # (video, handle) -> pending | active

    def teardown(self):
        self.stores.engine.dispose()
        self.tmp.cleanup()

    # -- the oracle ---------------------------------------------------------------------------
    def allows(self, requester: str, handle: str, prompt: str) -> bool:
        c = self.cameos.get(handle)
        if c is None or c.revoked:
            return False
        if c.restricted and PROMPTS[prompt]:
            return False
        if requester == c.owner or c.permission == "everyone":
            return True
        if c.permission == "approved":
            return requester in c.approved
        if c.permission == "mutuals":
            return (requester, c.owner) in self.follows and (c.owner, requester) in self.follows
        return False

    def servable(self, video_id: str) -> bool:
        creator, handles, prompt = self.videos[video_id]
        return video_id not in self.dead and all(
            self.allows(creator, h, prompt) and self.use_state.get((video_id, h)) == "active" for h in handles)

    # -- rules --------------------------------------------------------------------------------
    @rule(owner=st.sampled_from(USERS), level=st.sampled_from(LEVELS + ["everyone", "everyone", "mutuals"]))
    def register(self, owner, level):
        handle = f"c{len(self.cameos)}"
        with self.stores.engine.begin() as conn:
            ch = service.start_challenge(conn=conn, settings=self.settings, user_id=owner, handle=handle, kind="person")
            row = cameo_store.get_challenge(conn=conn, challenge_id=ch.id)
            rec = service.synthetic_recording()
            att = service.verify_recording(settings=self.settings, challenge_row=row, user_id=owner, challenge_id=ch.id,
                                           recording=rec)
            service.create_verified(conn=conn, settings=self.settings, media=None, challenge_row=row, attestation=att,
                                    recording=rec, permission=level)
        self.cameos[handle] = ModelCameo(owner=owner, permission=level)

    @precondition(lambda self: self.cameos)
    @rule(data=st.data(), level=st.sampled_from(LEVELS))
    def set_permission(self, data, level):
        handle = data.draw(st.sampled_from(sorted(self.cameos)))
        c = self.cameos[handle]
        if c.revoked:
            return
        with self.stores.engine.begin() as conn:
            service.update(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle, permission=level)
        c.permission = level

    @precondition(lambda self: self.cameos)
    @rule(data=st.data(), users=st.sets(st.sampled_from(USERS)))
    def approve_users(self, data, users):
        handle = data.draw(st.sampled_from(sorted(self.cameos)))
        c = self.cameos[handle]
        with self.stores.engine.begin() as conn:
            service.set_approved_users(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle,
                                       user_handles=sorted(users))
        c.approved = set(users)

    @precondition(lambda self: self.cameos)
    @rule(data=st.data(), restricted=st.booleans(), require_approval=st.booleans())
    def restrict(self, data, restricted, require_approval):
        handle = data.draw(st.sampled_from(sorted(self.cameos)))
        c = self.cameos[handle]
        if c.revoked:
            return
        with self.stores.engine.begin() as conn:
            service.update(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle,
                           restrictions=["no political content"] if restricted else [], require_approval=require_approval)
        c.restricted, c.require_approval = restricted, require_approval

    @rule(a=st.sampled_from(USERS), b=st.sampled_from(USERS), on=st.booleans(), both_ways=st.booleans())
    def follow(self, a, b, on, both_ways):
        if a == b:
            return
        pairs = [(a, b), (b, a)] if both_ways and on else [(a, b)]  # befriending makes mutuals common
        with self.stores.engine.begin() as conn:
            for x, y in pairs:
                if on:
                    user_store.add_follow(conn=conn, follower_id=x, followee_id=y)
                else:
                    user_store.remove_follow(conn=conn, follower_id=x, followee_id=y)
        for pair in pairs:
            (self.follows.add if on else self.follows.discard)(pair)

    @precondition(lambda self: self.cameos)
    @rule(data=st.data(), dice=st.integers(0, 3))
    def revoke(self, data, dice):
        if dice:  # revocation is final: drawn one time in four, so sequences live long enough to matter
            return
        handle = data.draw(st.sampled_from(sorted(self.cameos)))
        c = self.cameos[handle]
        with self.stores.engine.begin() as conn:
            service.revoke(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle)
        c.revoked = True
        self.dead |= {v for v, (_, hs, _) in self.videos.items() if handle in hs}

    @precondition(lambda self: self.cameos)
    @rule(data=st.data(), prompt=st.sampled_from(sorted(PROMPTS)), publish_now=st.booleans())
    def request(self, data, prompt, publish_now):
        handles = data.draw(st.lists(st.sampled_from(sorted(self.cameos)), min_size=1, max_size=2, unique=True))
        requester = data.draw(st.sampled_from(USERS))
        spec = generation.GenerationSpec(
            request_id=f"req_{next(_counter)}", requester_id=requester, requester_handle=requester, prompt=prompt,
            cameos=handles, width=256, height=256, duration_s=1.0, fps=24, seed=1)
        with self.stores.engine.begin() as conn:
            generation.register(conn=conn, spec=spec)
            admission = generation.admit(conn=conn, spec=spec, settings=self.settings)
        expected = all(self.allows(requester, h, prompt) for h in handles)
        assert admission.consent.allowed == expected, (admission.consent.reason, handles, requester, prompt)
        if admission.allowed:
            self.pending.append(spec)  # "generating": consent may change before it publishes
            if publish_now:
                self._publish(len(self.pending) - 1)

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def publish(self, data):
        self._publish(data.draw(st.integers(0, len(self.pending) - 1)))

    def _publish(self, index: int) -> None:
        spec = self.pending.pop(index)
        valid = all(self.allows(spec.requester_id, h, spec.prompt) for h in spec.cameos)
        with self.stores.engine.begin() as conn:
            video = generation.publish(conn=conn, spec=spec, stamped=_stamped(f"vid_{spec.request_id}"),
                                       settings=self.settings)
        assert (video is not None) == valid, f"publish {'allowed' if video else 'refused'} but the model says {valid}"
        if video is None:
            return
        self.videos[video.video_id] = (spec.requester_id, list(spec.cameos), spec.prompt)
        for h in spec.cameos:
            c = self.cameos[h]
            self.use_state[(video.video_id, h)] = "pending" if c.require_approval and c.owner != spec.requester_id else "active"
        if video.published_at is not None:  # published now (not a draft): consent must hold at this moment
            assert self.servable(video.video_id)

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), change=st.sampled_from(["only_me", "restrict", "unfollow", "unapprove", "revoke", "none"]))
    def change_while_generating(self, data, change):
        """A consent change lands between admission and publish: publish must see it."""
        index = data.draw(st.integers(0, len(self.pending) - 1))
        spec = self.pending[index]
        handle = data.draw(st.sampled_from(spec.cameos))
        c = self.cameos[handle]
        with self.stores.engine.begin() as conn:
            if c.revoked or change == "none":
                pass
            elif change == "only_me":
                service.update(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle, permission="only_me")
                c.permission = "only_me"
            elif change == "restrict":
                service.update(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle,
                               restrictions=["no political content"])
                c.restricted = True
            elif change == "unfollow":
                user_store.remove_follow(conn=conn, follower_id=c.owner, followee_id=spec.requester_id)
                self.follows.discard((c.owner, spec.requester_id))
            elif change == "unapprove":
                service.set_approved_users(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle, user_handles=[])
                c.approved = set()
            elif change == "revoke":
                service.revoke(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle)
                c.revoked = True
                self.dead |= {v for v, (_, hs, _) in self.videos.items() if handle in hs}
        self._publish(index)

    @precondition(lambda self: any(s == "pending" for s in self.use_state.values()))
    @rule(data=st.data(), approve=st.booleans())
    def decide_pending_use(self, data, approve):
        video_id, handle = data.draw(st.sampled_from(sorted(k for k, s in self.use_state.items() if s == "pending")))
        c = self.cameos[handle]
        if c.revoked or video_id in self.dead:
            return
        with self.stores.engine.begin() as conn:
            if approve:
                service.approve_use(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle, video_id=video_id)
            else:
                service.remove_use(conn=conn, settings=self.settings, owner_id=c.owner, handle=handle, video_id=video_id)
        if approve:
            self.use_state[(video_id, handle)] = "active"
        else:
            self.dead.add(video_id)

    @precondition(lambda self: self.videos)
    @rule(data=st.data())
    def remove_use(self, data):
        video_id = data.draw(st.sampled_from(sorted(self.videos)))
        handle = self.videos[video_id][1][0]
        with self.stores.engine.begin() as conn:
            service.remove_use(conn=conn, settings=self.settings, owner_id=self.cameos[handle].owner, handle=handle,
                               video_id=video_id)
        self.dead.add(video_id)

    @rule()
    def sweep(self):
        with self.stores.engine.begin() as conn:
            lapsed = find_lapsed(conn=conn, settings=self.settings, page=7)
            withdraw(conn=conn, lapsed=lapsed)
        for item in lapsed:
            assert not self.servable(item.video_id) or item.video_id in self.dead, item
            self.dead.add(item.video_id)

    # -- the invariant, checked after every step: what a feed serve returns --------------------
    @invariant()
    def feed_serves_exactly_the_videos_consent_allows(self):
        with self.stores.engine.connect() as conn:
            page = feed_page(conn=conn, settings=self.settings, limit=1000)
            published = {v.id for v in catalog.feed_candidates(conn=conn, limit=10_000)}
        served = {v.id for v in page.videos}
        for vid in served:
            assert self.servable(vid), f"served {vid} without consent: {self.videos[vid]}"
        should = {v for v in self.videos if v in published and self.servable(v)}
        assert served == should, f"withheld videos consent allows: {sorted(should - served)}"

    @invariant()
    def ledger_verifies(self):
        with self.stores.engine.connect() as conn:
            report = verify(conn=conn, public_keys=[LedgerKey.for_settings(self.settings).public])
        assert report.ok, report.problems


ConsentMachine.TestCase.settings = hsettings(
    max_examples=50, stateful_step_count=50, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_consent_invariant = ConsentMachine.TestCase
