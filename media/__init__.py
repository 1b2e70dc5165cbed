"""The media service: WebRTC signalling and audio mixing rooms."""
