"""A mixing room: its participants by user id, and one tick of mixing, encoding and sending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from media.audio_format import FRAME_SAMPLES, TICK_SECONDS, Pcm
from media.levels import SILENT_DBOV, rms_dbov
from media.mixing import mix
from media.participant import Participant
from media.talkers import TalkerPolicy, TalkerSet
from media.voice_encoder import SharedSilence, VoiceEncoder

OnLeave = Callable[[str, str], None]
"""Called with (room_id, user_id) once when a participant's connection fails or closes."""

OnSpeaking = Callable[[str, str, bool], None]
"""Called with (room_id, user_id, speaking) when a participant's reported state changes."""

ENDED = ("failed", "closed")


@dataclass(frozen=True)
class TickReport:
    """What one tick of one room cost."""

    encodes: int
    concealed: int


class Room:
    """Participants by user id; `tick` mixes one 20 ms frame for all of them."""

    def __init__(
        self,
        room_id: str,
        *,
        on_leave: OnLeave | None = None,
        on_speaking: OnSpeaking | None = None,
        talker_policy: TalkerPolicy | None = None,
    ) -> None:
        self.room_id = room_id
        self.participants: dict[str, Participant] = {}
        self._on_leave = on_leave
        self._on_speaking = on_speaking
        self._talkers: TalkerSet[str] = TalkerSet(talker_policy)
        self._shared = VoiceEncoder()
        self.silence = SharedSilence()  # the mixer gives every room of a process its own one
        self._closed = False

    async def admit(self, participant: Participant) -> None:
        """Add a participant; one already there with that user id is replaced and closed."""
        old = self.participants.get(participant.user_id)
        self.participants[participant.user_id] = participant
        pc = participant.pc

        @pc.on("connectionstatechange")
        async def ended() -> None:
            if pc.connectionState in ENDED:
                await self.drop(participant)

        if old is not None:
            await old.close()
        if self._closed or pc.connectionState in ENDED:
            await self.drop(participant)

    async def drop(self, participant: Participant) -> None:
        """Remove a participant whose connection ended; `on_leave` fires once for it."""
        if self.participants.get(participant.user_id) is not participant:
            return  # replaced by a newer connection, or already dropped
        del self.participants[participant.user_id]
        await participant.close()
        if self._on_leave is not None and not self._closed:
            self._on_leave(self.room_id, participant.user_id)

    def set_muted(self, user_id: str, muted: bool) -> None:
        """Mute or unmute a participant (a muted one still hears the others)."""
        participant = self.participants.get(user_id)
        if participant is not None:
            participant.muted = muted

    async def close(self) -> None:
        """Close every connection (the room was released); no leave is reported for them."""
        self._closed = True
        participants = list(self.participants.values())
        self.participants.clear()
        await asyncio.gather(*(p.close() for p in participants))

    def tick(self, index: int) -> TickReport:
        """Mix tick `index`: one frame in per participant, one packet out to each."""
        now = index * TICK_SECONDS
        frames, levels, concealed = self._take_frames(now)
        talkers = self._talkers.update(levels.items(), now)
        # Only talkers are mixed: whoever is in the mix gets a mix without themselves.
        heard = {user: frame for user in talkers if (frame := frames[user]) is not None}
        result = mix(heard, minus_for=talkers)
        pts = index * FRAME_SAMPLES
        encodes = 0
        listeners = [p for user, p in self.participants.items() if user not in talkers]
        if listeners:
            # One encode for everyone who is not talking: they all hear the same mix.
            if heard:
                shared = self._shared.encode(result.everyone, pts)
                encodes += 1
            else:
                shared, encoded = self.silence.packet(index)
                encodes += encoded
            for participant in listeners:
                participant.own_encoder = None
                if shared is not None:
                    participant.outbound.put(shared)
        for user in talkers:
            participant = self.participants[user]
            if heard.keys() <= {user}:
                # Hears no one (a lone talker): the process's one silence. Its own encoder is
                # kept while it talks: another talker's frame may be missing for a tick only,
                # and an encoder costs more to make and free than to run.
                own, encoded = self.silence.packet(index)
                encodes += encoded
            else:
                if participant.own_encoder is None:
                    participant.own_encoder = VoiceEncoder()
                own = participant.own_encoder.encode(result.minus[user], pts)
                encodes += 1
            if own is not None:
                participant.outbound.put(own)
        return TickReport(encodes=encodes, concealed=concealed)

    def _take_frames(self, now: float) -> tuple[dict[str, Pcm | None], dict[str, float], int]:
        """Each participant's frame (None: silence) and level; muted ones are not heard."""
        frames: dict[str, Pcm | None] = {}
        levels: dict[str, float] = {}
        concealed = 0
        for user, participant in self.participants.items():
            # Taken even when muted, so that the queue keeps moving.
            frame, was_concealed = participant.concealer.next(participant.inbound.take())
            concealed += was_concealed
            if participant.muted:
                frame = None
            level = SILENT_DBOV if frame is None else rms_dbov(frame)
            change = participant.speaking.update(level, now)
            if change is not None and self._on_speaking is not None:
                self._on_speaking(self.room_id, user, change)
            if not participant.muted:
                frames[user] = frame
                levels[user] = level
        return frames, levels, concealed
