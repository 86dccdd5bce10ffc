"""Audio for and from SIPp runs: G.711 A-law, captures SIPp plays (a tone, RFC 4733 digits with our
workers' payload type), and reading what a phone's RTP socket received (a tone through a bridge)."""

from __future__ import annotations

from pathlib import Path

from callrouter.devtools.sipp_xml import PCAPS

def alaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 A-law."""
    pcm = sample >> 3
    mask = 0xD5
    if pcm < 0:
        mask, pcm = 0x55, -pcm - 1
    seg = next((i for i, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)) if pcm <= end), 8)
    value = 0x7F if seg >= 8 else (seg << 4) | ((pcm >> 1 if seg < 2 else pcm >> seg) & 0x0F)
    return value ^ mask


def linear(code: int) -> int:
    """One G.711 A-law byte as a 16-bit linear sample."""
    code ^= 0x55
    value = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    value += 8 if seg == 0 else 0x108
    if seg > 1:
        value <<= seg - 1
    return value if code & 0x80 else -value


def tone_pcap(directory: Path, frequency: float, ms: int, level: float = 0.3) -> Path:
    """A capture SIPp can play (`play_pcap_audio`): a pure tone as A-law RTP, 20 ms a packet."""
    import math
    import struct

    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ssrc = 0x5A5A1234
    for n in range(max(1, ms // 20)):
        payload = bytes(alaw(int(level * 32767 * math.sin(2 * math.pi * frequency * (n * 160 + i) / 8000)))
                        for i in range(160))
        rtp = struct.pack("!BBHII", 0x80, 8, n, n * 160, ssrc) + payload
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        out += struct.pack("<IIII", n // 50, (n % 50) * 20000, len(frame), len(frame)) + frame
    path = directory / f"tone_{int(frequency)}_{ms}.pcap"
    path.write_bytes(bytes(out))
    return path


def tone_packets(payloads: list[bytes], frequency: float, purity: float = 0.6) -> int:
    """How many A-law payloads are mostly a tone at `frequency` (Goertzel), e.g. what a phone's
    RTP socket received, to tell a party heard the other's tone through a bridge."""
    import math

    coeff = 2 * math.cos(2 * math.pi * frequency / 8000)
    found = 0
    for payload in payloads:
        samples = [linear(b) for b in payload]
        energy = sum(x * x for x in samples)
        if len(samples) < 80 or energy < len(samples) * 100 * 100:
            continue
        s1 = s2 = 0.0
        for x in samples:
            s1, s2 = x + coeff * s1 - s2, s1
        power = s1 * s1 + s2 * s2 - coeff * s1 * s2
        if power / (len(samples) / 2 * energy) >= purity:
            found += 1
    return found


def rtp_payloads(pcap: str | Path) -> list[bytes]:
    """The RTP payloads of an Ethernet capture (e.g. the speech SIPp plays with "audio" steps), to
    recognise them where they arrive."""
    import struct

    data = (PCAPS / pcap).read_bytes()
    out, offset = [], 24
    while offset + 16 <= len(data):
        length = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        ip = offset + 16 + 14
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        out.append(data[rtp + 12:offset + 16 + length])
        offset += 16 + length
    return out


def dtmf_pcap(directory: Path, digit: str, payload_type: int) -> Path:
    """A copy of SIPp's RFC 2833 capture of `digit` with the events' RTP payload type changed (and
    the UDP checksums cleared, which IPv4 allows), written under `directory`."""
    import struct

    source = PCAPS / ({"#": "dtmf_2833_pound.pcap", "*": "dtmf_2833_star.pcap"}.get(digit, f"dtmf_2833_{digit}.pcap"))
    data = bytearray(source.read_bytes())
    if struct.unpack("<I", data[:4])[0] != 0xA1B2C3D4 or struct.unpack("<I", data[20:24])[0] != 1:
        raise ValueError(f"{source}: expected a little-endian Ethernet capture")
    offset = 24
    while offset + 16 <= len(data):
        length = struct.unpack("<I", data[offset + 8:offset + 12])[0]
        packet = offset + 16
        ip = packet + 14
        udp = ip + (data[ip] & 0x0F) * 4
        data[udp + 6:udp + 8] = b"\0\0"
        rtp = udp + 8
        data[rtp + 1] = (data[rtp + 1] & 0x80) | payload_type
        offset = packet + length
    path = directory / f"dtmf_{'pound' if digit == '#' else 'star' if digit == '*' else digit}_pt{payload_type}.pcap"
    path.write_bytes(bytes(data))
    return path
