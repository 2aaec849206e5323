#!/usr/bin/env python3
"""Reference re-implementation of CICFlowMeter V3 (2017-10) used to validate the spec.
Usage: v3ref.py CAPTURE.pcap [--strip] [--tz UTC] > out.csv
--strip : emulate the run-mode in which jnetpcap strips Ethernet trailers (padding NOT counted)
"""
import struct, sys, math, datetime, argparse

HEADER = ("Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets,"
 "Total Length of Fwd Packets, Total Length of Bwd Packets, Fwd Packet Length Max, Fwd Packet Length Min, Fwd Packet Length Mean, Fwd Packet Length Std,"
 "Bwd Packet Length Max, Bwd Packet Length Min, Bwd Packet Length Mean, Bwd Packet Length Std,Flow Bytes/s, Flow Packets/s, Flow IAT Mean, Flow IAT Std, Flow IAT Max, Flow IAT Min,"
 "Fwd IAT Total, Fwd IAT Mean, Fwd IAT Std, Fwd IAT Max, Fwd IAT Min,Bwd IAT Total, Bwd IAT Mean, Bwd IAT Std, Bwd IAT Max, Bwd IAT Min,"
 "Fwd PSH Flags, Bwd PSH Flags, Fwd URG Flags, Bwd URG Flags, Fwd Header Length, Bwd Header Length,Fwd Packets/s, Bwd Packets/s, Min Packet Length, Max Packet Length, Packet Length Mean, Packet Length Std, Packet Length Variance,"
 "FIN Flag Count, SYN Flag Count, RST Flag Count, PSH Flag Count, ACK Flag Count, URG Flag Count, CWE Flag Count, ECE Flag Count, Down/Up Ratio, Average Packet Size, Avg Fwd Segment Size, Avg Bwd Segment Size, Fwd Header Length,"
 "Fwd Avg Bytes/Bulk, Fwd Avg Packets/Bulk, Fwd Avg Bulk Rate, Bwd Avg Bytes/Bulk, Bwd Avg Packets/Bulk,Bwd Avg Bulk Rate,"
 "Subflow Fwd Packets, Subflow Fwd Bytes, Subflow Bwd Packets, Subflow Bwd Bytes,Init_Win_bytes_forward, Init_Win_bytes_backward, act_data_pkt_fwd, min_seg_size_forward,"
 "Active Mean, Active Std, Active Max, Active Min,Idle Mean, Idle Std, Idle Max, Idle Min, Label")

# ---------------------------------------------------------------- capture reading
def read_pcap(path):
    data = open(path, 'rb').read()
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        e = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        e = '>'
    else:
        raise SystemExit('pcapng not supported by this reference reader')
    nano = magic in (b'\x4d\x3c\xb2\xa1', b'\xa1\xb2\x3c\x4d')
    linktype = struct.unpack(e + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + 'IIII', data[off:off + 16])
        off += 16
        buf = data[off:off + incl]; off += incl
        usec = frac // 1000 if nano else frac
        yield sec * 1000000 + usec, buf, orig, linktype

# ---------------------------------------------------------------- jnetpcap 1.3 scanner emulation
class Pkt:
    __slots__ = ('src', 'dst', 'sport', 'dport', 'proto', 'ts', 'payload', 'hdr', 'flags', 'win', 'fid')

class StaleTcp:  # the PacketReader's Tcp header object, reused across packets of one file
    def __init__(self):
        self.hdr_len = -1   # never bound -> native getLength() returns -1

def scan_ip4(buf, o, buf_len, prev_is_eth, strip):
    """returns (ip, l4list, buf_len) ; ip = dict or None"""
    if buf_len - o < 20:
        return None, [], buf_len
    b0 = buf[o]; ihl = (b0 & 0x0f) * 4
    if ihl == 0:
        return None, [], buf_len
    tot_len = struct.unpack('!H', buf[o + 2:o + 4])[0]
    if strip and prev_is_eth and tot_len <= buf_len:
        postfix = buf_len - 14 - tot_len
        if postfix > 0:
            buf_len -= postfix
    hl = min(ihl, buf_len - o)           # adjustForTruncatedPacket
    ip = dict(off=o, len=hl, src=bytes(buf[o + 12:o + 16]), dst=bytes(buf[o + 16:o + 20]), proto=buf[o + 9])
    frag = struct.unpack('!H', buf[o + 6:o + 8])[0]
    l4 = []
    if frag & 0x1fff:
        return ip, l4, buf_len
    nxt = o + ihl
    if buf_len - nxt <= 0:
        return ip, l4, buf_len
    p = buf[o + 9]
    l4, buf_len = scan_l4(buf, nxt, buf_len, p, strip)
    return ip, l4, buf_len

def scan_l4(buf, o, buf_len, p, strip):
    out = []
    if p == 6:
        if buf_len - o >= 20:
            doff = (buf[o + 12] >> 4) * 4
            if doff:
                hl = min(doff, buf_len - o)
                pay = max(0, buf_len - (o + doff)) if o + doff <= buf_len else 0
                out.append(('tcp', o, hl, pay))
    elif p == 17:
        if buf_len - o >= 8:
            out.append(('udp', o, 8, max(0, buf_len - o - 8)))
    elif p == 1:
        if buf_len - o >= 4 and buf[o] in (3, 12):
            # quoted IPv4 header after 8 bytes
            ip, l4, buf_len = scan_ip4(buf, o + 8, buf_len, False, strip)
            if ip is not None:
                out.append(('ip4', ip))
                out.extend(l4)
    elif p == 4:
        ip, l4, buf_len = scan_ip4(buf, o, buf_len, False, strip)
        if ip is not None:
            out.append(('ip4', ip)); out.extend(l4)
    return out, buf_len

def scan_ethernet(buf, strip):
    buf_len = len(buf)
    if buf_len < 14:
        return None, []
    o = 12; prev_eth = True
    etype = struct.unpack('!H', buf[12:14])[0]; o = 14
    while True:
        if etype < 0x600:
            # IEEE 802.3 length field. jnetpcap bug: effective end of buffer becomes the length value itself
            if etype < buf_len:
                buf_len = etype
            if buf_len - o < 3:
                return None, []
            ctl = buf[o + 2]
            llc_len = 3 if (ctl & 1) else 4      # operator-precedence bug: (control & 0x3 == 0x3) == (control & 1)
            if buf[o] != 0xaa:
                return None, []
            s = o + llc_len
            if buf_len - s < 5 or buf[s:s + 3] not in (b'\x00\x00\x00', b'\x00\x00\xf8'):
                return None, []
            etype = struct.unpack('!H', buf[s + 3:s + 5])[0]; o = s + 5; prev_eth = False
            continue
        if etype == 0x8100:
            if buf_len - o < 4:
                return None, []
            etype = struct.unpack('!H', buf[o + 2:o + 4])[0]; o += 4; prev_eth = False
            continue
        if etype == 0x0800:
            ip, l4, _ = scan_ip4(buf, o, buf_len, prev_eth, strip)
            return ip, l4
        if etype == 0x86dd:
            if buf_len - o >= 40 and buf[o + 6] == 4:   # 4in6 only
                ip, l4, _ = scan_ip4(buf, o + 40, buf_len, False, strip)
                return ip, l4
            return None, []
        return None, []

def ipv4_info(ts, buf, ip, l4, stale):
    """PacketReader.getIpv4Info; returns Pkt, or None when no IPv4 header / an exception would be thrown"""
    if ip is None or ip['len'] < 20:          # Ip4.source()/destination() read bytes 12..20 of the header
        return None
    p = Pkt(); p.ts = ts
    p.src = ip['src']; p.dst = ip['dst']
    p.sport = p.dport = p.proto = 0; p.payload = 0; p.hdr = 0; p.flags = 0; p.win = -1
    tcp = next((x for x in l4 if x[0] == 'tcp'), None)
    udp = next((x for x in l4 if x[0] == 'udp'), None)
    if tcp and 5060 in struct.unpack('!HH', buf[tcp[1]:tcp[1] + 4]) and tcp[3] == 0:
        tcp = None; udp = None      # jnetpcap SIP binding: empty TCP segment on port 5060 loses its TCP header
    if tcp:
        _, o, hl, pay = tcp
        stale.hdr_len = hl
        if hl < 16:
            return None             # Tcp.window() reads bytes 14..16 -> exception
        p.win = struct.unpack('!H', buf[o + 14:o + 16])[0]
        p.sport, p.dport = struct.unpack('!HH', buf[o:o + 4])
        p.proto = 6; p.flags = buf[o + 13]
        p.payload = pay; p.hdr = hl
    elif udp:
        _, o, hl, pay = udp
        p.sport, p.dport = struct.unpack('!HH', buf[o:o + 4])
        p.payload = pay; p.hdr = stale.hdr_len; p.proto = 17
    p.fid = flow_id(p)
    return p

def decode(ts, buf, stale, strip):
    """PacketReader.nextPacket emulation; returns Pkt or None"""
    ip, l4 = scan_ethernet(buf, strip)
    p = ipv4_info(ts, buf, ip, l4, stale)
    if p is None:
        # getVPNInfo: rescan frame as L2TP (always succeeds), then as IPv4 starting at byte 0 of the frame
        ip, l4, _ = scan_ip4(buf, 0, len(buf), False, strip)
        p = ipv4_info(ts, buf, ip, l4, stale)
    return p

def ipstr(b):
    return '.'.join(str(x) for x in b)

def flow_id(p):
    fwd = True
    for a, b in zip(p.src, p.dst):
        sa = a - 256 if a > 127 else a; sb = b - 256 if b > 127 else b
        if sa != sb:
            if sa > sb:
                fwd = False
            break
    if fwd:
        return f"{ipstr(p.src)}-{ipstr(p.dst)}-{p.sport}-{p.dport}-{p.proto}"
    return f"{ipstr(p.dst)}-{ipstr(p.src)}-{p.dport}-{p.sport}-{p.proto}"

# ---------------------------------------------------------------- commons-math3 SummaryStatistics
class SS:
    __slots__ = ('n', 's', 'mn', 'mx', 'm1', 'm2')
    def __init__(self):
        self.n = 0; self.s = 0.0; self.mn = math.nan; self.mx = math.nan; self.m1 = 0.0; self.m2 = 0.0
    def add(self, v):
        v = float(v)
        if self.n == 0:
            self.m1 = 0.0; self.m2 = 0.0; self.mn = v; self.mx = v
        # SecondMoment.increment (FirstMoment then m2)
        n0 = self.n
        self.n += 1
        if n0 == 0:
            self.m1 = 0.0
        dev = v - self.m1
        nDev = dev / self.n
        self.m1 += nDev
        self.m2 += (self.n - 1.0) * dev * nDev
        self.s += v
        if v < self.mn: self.mn = v
        if v > self.mx: self.mx = v
    def mean(self):
        return self.m1 if self.n else math.nan   # Mean(FirstMoment).getResult() = running m1
    def var(self):
        if self.n == 0: return math.nan
        if self.n == 1: return 0.0
        return self.m2 / (self.n - 1.0)
    def std(self):
        if self.n == 0: return math.nan
        if self.n == 1: return 0.0
        return math.sqrt(self.var())

# ---------------------------------------------------------------- Java formatting
def jd(x):
    """java.lang.Double.toString (shortest-repr approximation)"""
    if isinstance(x, int):
        x = float(x)
    if math.isnan(x): return 'NaN'
    if math.isinf(x): return 'Infinity' if x > 0 else '-Infinity'
    if x == 0.0: return '-0.0' if math.copysign(1, x) < 0 else '0.0'
    r = repr(x)
    neg = r.startswith('-'); r = r.lstrip('-')
    # get digits and exponent
    if 'e' in r:
        mant, ex = r.split('e'); ex = int(ex)
    else:
        mant, ex = r, 0
    if '.' in mant:
        ip, fp = mant.split('.')
    else:
        ip, fp = mant, ''
    digits = (ip + fp).lstrip('0')
    # decimal exponent such that value = 0.d1d2... * 10^pos
    pos = len(ip) + ex if ip != '0' else ex - (len(fp) - len(fp.lstrip('0')))
    digits = digits.rstrip('0') or '0'
    a = abs(x)
    if 1e-3 <= a < 1e7:
        if pos <= 0:
            s = '0.' + '0' * (-pos) + digits
        elif pos >= len(digits):
            s = digits + '0' * (pos - len(digits)) + '.0'
        else:
            s = digits[:pos] + '.' + digits[pos:]
    else:
        e = pos - 1
        s = digits[0] + '.' + (digits[1:] or '0') + 'E' + str(e)
    return ('-' if neg else '') + s

def jts(us, tz):
    ms = int(us / 1000) if us >= 0 else -((-us) // 1000)
    d = datetime.datetime.fromtimestamp(ms / 1000.0, tz)
    h = d.hour % 12
    if h == 0: h = 12
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d} {h:02d}:{d.minute:02d}:{d.second:02d}"

# ---------------------------------------------------------------- Java HashMap emulation (String / Integer keys)
def jstrhash(s):
    h = 0
    for c in s:
        h = (31 * h + ord(c)) & 0xffffffff
    return h

class JHashMap:
    """insertion/removal order semantics of java.util.HashMap (no treeification)."""
    def __init__(self, hashf):
        self.cap = 16; self.tab = [[] for _ in range(16)]; self.size = 0; self.hashf = hashf; self.d = {}
    def _h(self, k):
        h = self.hashf(k); return h ^ (h >> 16)
    def put(self, k, v):
        if k in self.d:
            self.d[k] = v; return
        self.d[k] = v
        self.tab[self._h(k) & (self.cap - 1)].append(k)
        self.size += 1
        if self.size > 0.75 * self.cap:
            self._resize()
    def _resize(self):
        ncap = self.cap * 2; nt = [[] for _ in range(ncap)]
        for b in self.tab:
            for k in b:
                nt[self._h(k) & (ncap - 1)].append(k)
        self.cap = ncap; self.tab = nt
    def remove(self, k):
        if k in self.d:
            del self.d[k]
            self.tab[self._h(k) & (self.cap - 1)].remove(k)
            self.size -= 1
    def get(self, k): return self.d.get(k)
    def __contains__(self, k): return k in self.d
    def keys(self):
        for b in self.tab:
            for k in b:
                yield k

# ---------------------------------------------------------------- BasicFlow
FLAG_ORDER = [('RST', 0x04), ('PSH', 0x08), ('ECE', 0x40), ('SYN', 0x02), ('ACK', 0x10), ('FIN', 0x01), ('URG', 0x20), ('CWR', 0x80)]

class Flow:
    def __init__(self, p, old=None):
        self.fwd = SS(); self.bwd = SS(); self.flowIAT = SS(); self.fIAT = SS(); self.bIAT = SS()
        self.len = SS(); self.active = SS(); self.idle = SS()
        self.nf = 0; self.nb = 0; self.fbytes = 0; self.bbytes = 0; self.fhdr = 0; self.bhdr = 0
        self.act_data = 0
        # firstPacket: always treated as forward
        self.flags = {k: (1 if p.flags & m else 0) for k, m in FLAG_ORDER}
        self.start = self.last = self.sa = self.ea = p.ts
        self.len.add(p.payload); self.len.add(p.payload)
        self.src, self.dst, self.sport, self.dport = p.src, p.dst, p.sport, p.dport
        self.min_seg = p.hdr; self.iwf = p.win; self.iwb = -1
        self.fwd.add(p.payload); self.fhdr = p.hdr; self.flast = p.ts; self.fbytes = p.payload; self.nf = 1
        self.fpsh = 1 if p.flags & 0x08 else 0; self.furg = 1 if p.flags & 0x20 else 0
        self.proto = p.proto; self.fid = p.fid
        if old is not None:
            self.src, self.dst, self.sport, self.dport = old.src, old.dst, old.sport, old.dport
    def count(self): return self.nf + self.nb
    def update_active_idle(self, t, thr):
        if t - self.ea > thr:
            if self.ea - self.sa > 0:
                self.active.add(self.ea - self.sa)
            self.idle.add(t - self.ea)
            self.sa = self.ea = t
        else:
            self.ea = t
    def add(self, p):
        t = p.ts
        self.len.add(p.payload)
        if self.src == p.src:
            if p.payload >= 1: self.act_data += 1
            self.fwd.add(p.payload); self.fhdr += p.hdr; self.nf += 1; self.fbytes += p.payload
            if self.nf > 1: self.fIAT.add(t - self.flast)
            self.flast = t
            self.min_seg = min(p.hdr, self.min_seg)
        else:
            self.bwd.add(p.payload); self.iwb = p.win; self.bhdr += p.hdr; self.nb += 1; self.bbytes += p.payload
            if self.nb > 1: self.bIAT.add(t - self.blast)
            self.blast = t
        self.flowIAT.add(t - self.last)
        self.last = t
    def dump(self, tz):
        o = []; A = o.append
        dur = self.last - self.start
        A(self.fid); A(ipstr(self.src)); A(str(self.sport)); A(ipstr(self.dst)); A(str(self.dport)); A(str(self.proto))
        A(jts(self.start, tz)); A(str(dur)); A(str(self.fwd.n)); A(str(self.bwd.n)); A(jd(self.fwd.s)); A(jd(self.bwd.s))
        for s in (self.fwd, self.bwd):
            if s.n > 0:
                A(jd(s.mx)); A(jd(s.mn)); A(jd(s.mean())); A(jd(s.std()))
            else:
                o.extend(['0'] * 4)
        secs = dur / 1000000.0
        A(jd(fdiv(float(self.fbytes + self.bbytes), secs))); A(jd(fdiv(float(self.count()), secs)))
        A(jd(self.flowIAT.mean())); A(jd(self.flowIAT.std())); A(jd(self.flowIAT.mx)); A(jd(self.flowIAT.mn))
        for n, s in ((self.nf, self.fIAT), (self.nb, self.bIAT)):
            if n > 1:
                A(jd(s.s)); A(jd(s.mean())); A(jd(s.std())); A(jd(s.mx)); A(jd(s.mn))
            else:
                o.extend(['0'] * 5)
        A(str(self.fpsh)); A('0'); A(str(self.furg)); A('0')
        A(str(self.fhdr)); A(str(self.bhdr))
        A(jd(self.nf / secs if dur > 0 else 0.0)); A(jd(self.nb / secs if dur > 0 else 0.0))
        A(jd(self.len.mn)); A(jd(self.len.mx)); A(jd(self.len.mean())); A(jd(self.len.std())); A(jd(self.len.var()))
        for k, _ in FLAG_ORDER:
            A(str(self.flags[k]))
        A(jd(float(self.nb // self.nf) if self.nf > 0 else 0.0))
        A(jd(self.len.s / self.count()))
        A(jd(self.fwd.s / self.nf if self.nf else 0.0)); A(jd(self.bwd.s / self.nb if self.nb else 0.0))
        A(str(self.fhdr))
        o.extend(['0'] * 6)
        A(str(self.nf)); A(str(self.fbytes)); A(str(self.nb)); A(str(self.bbytes))
        A(str(self.iwf)); A(str(self.iwb)); A(str(self.act_data)); A(str(self.min_seg))
        for s in (self.active, self.idle):
            if s.n > 0:
                A(jd(s.mean())); A(jd(s.std())); A(jd(s.mx)); A(jd(s.mn))
            else:
                o.extend(['0'] * 4)
        lab = 'BOTNET' if '147.32.84.165' in (ipstr(self.src), ipstr(self.dst)) else 'BENIGN'
        A(lab)
        return ','.join(o)

def fdiv(a, b):
    if b == 0.0:
        if a == 0.0 or math.isnan(a): return math.nan
        return math.inf if a > 0 else -math.inf
    return a / b

# ---------------------------------------------------------------- FlowGenerator
def run(path, strip=False, tz=datetime.timezone.utc, FT=120000000, AT=5000000):
    cur = JHashMap(jstrhash); fin = []  # fin: list in close order
    stale = StaleTcp()
    for ts, buf, orig, lt in read_pcap(path):
        if orig < len(buf):
            continue      # jnetpcap: 'wirelen < buffer len' exception -> packet ignored
        p = decode(ts, buf, stale, strip)
        if p is None:
            continue
        if p.fid in cur:
            f = cur.get(p.fid)
            if ts - f.start > FT:
                if f.count() > 1:
                    fin.append(f)
                cur.remove(p.fid)
                cur.put(p.fid, Flow(p, old=f))
            elif p.flags & 0x01:
                f.add(p)
                fin.append(f)
                cur.remove(p.fid)
            else:
                f.update_active_idle(ts, AT)
                f.add(p)
                cur.put(p.fid, f)
        else:
            cur.put(p.fid, Flow(p))
    rows = [HEADER]
    # finished flows: HashMap<Integer> iteration order: by key ^ (key >>> 16)
    keyed = sorted(range(1, len(fin) + 1), key=lambda k: k ^ (k >> 16))
    for k in keyed:
        f = fin[k - 1]
        if f.count() > 1:
            rows.append(f.dump(tz))
    for k in cur.keys():
        f = cur.get(k)
        if f.count() > 1:
            rows.append(f.dump(tz))
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('pcap'); ap.add_argument('--strip', action='store_true'); ap.add_argument('--tz', default='UTC')
    a = ap.parse_args()
    import zoneinfo
    tz = zoneinfo.ZoneInfo(a.tz)
    sys.stdout.write('\n'.join(run(a.pcap, a.strip, tz)) + '\n')
