"""Signalling: an SDP offer from a participant in, the room's SDP answer out."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from media.inbound_audio import tap_opus
from media.participant import Participant
from media.room import Room


class MalformedOffer(ValueError):
    """The offer is not SDP we can answer (a 400 for the client)."""


async def answer_offer(room: Room, user_id: str, sdp: str) -> str:
    """Connect `user_id` to `room` from its offer; the answer's SDP (gathering is complete)."""
    check_offer(sdp)
    # No STUN: with no list at all aiortc would try a public server it cannot reach here.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    participant = Participant(user_id, pc)
    pc.on("track", participant.drain)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as error:  # aiortc raises several kinds for SDP it cannot use
        await pc.close()
        raise MalformedOffer(f"unusable offer: {error}") from error
    try:
        pc.addTrack(participant.outbound)
        for transceiver in pc.getTransceivers():
            if transceiver.kind != "audio":
                transceiver.direction = "inactive"  # audio only: nothing else is decoded
            else:
                tap_opus(transceiver.receiver, opus_types(sdp), participant.inbound)
        await pc.setLocalDescription(await pc.createAnswer())
    except BaseException:
        await pc.close()
        raise
    await room.admit(participant)
    return pc.localDescription.sdp


def opus_types(sdp: str) -> set[int]:
    """The RTP payload types an offer gives Opus."""
    return {
        codec.payloadType
        for media in SessionDescription.parse(sdp).media
        if media.kind == "audio"
        for codec in media.rtp.codecs
        if codec.mimeType.lower() == "audio/opus" and codec.payloadType is not None
    }


def check_offer(sdp: str) -> None:
    """Refuse what cannot be an audio offer before any connection is made."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as error:  # the parser asserts and indexes as it goes
        raise MalformedOffer(f"not SDP: {error}") from error
    if not any(media.kind == "audio" for media in parsed.media):
        raise MalformedOffer("the offer has no audio")
