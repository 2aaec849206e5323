"""Runs v3_ref.py (the Python model of CICFlowMeter V3 written to derive docs/CICFLOWMETER_V3.md)
on every capture of ../shared/pcaps in both padding modes and compares it cell by cell with the
genuine V3 jar's CSVs in generated/v3. Not part of the test suite (the Rust port is tested by
tests/v3_agreement.rs); kept so the spec can be re-checked. Python 3.11, standard library only.
Run from the repository root: python3 crates/flowmeter/tests/reference/v3_ref_compare.py [VERBOSE]
"""
import sys, csv, subprocess, collections
import os; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import v3_ref as v3ref, datetime
def load(rows):
    return [r for r in csv.reader(rows)]
def compare(pcap, ref_csv, strip, verbose=0):
    mine = load(v3ref.run(pcap, strip))
    ref = load(open(ref_csv).read().splitlines())
    hdr_ok = mine[0] == ref[0]
    m = mine[1:]; r = ref[1:]
    order_ok = [x[0] for x in m] == [x[0] for x in r]
    # match rows by (flow id, timestamp, first packet counts..) multiset
    def key(x): return (x[0], x[6], x[2], x[1])
    mk = collections.defaultdict(list); rk = collections.defaultdict(list)
    for x in m: mk[key(x)].append(x)
    for x in r: rk[key(x)].append(x)
    colbad = collections.Counter(); rowmiss = 0; rowextra = 0; cellbad = 0; cells = 0
    for k in set(mk) | set(rk):
        a = mk.get(k, []); b = rk.get(k, [])
        if len(a) != len(b):
            rowmiss += max(0, len(b) - len(a)); rowextra += max(0, len(a) - len(b))
        for x, y in zip(sorted(a), sorted(b)):
            for i, (u, v) in enumerate(zip(x, y)):
                cells += 1
                if u != v:
                    colbad[i + 1] += 1; cellbad += 1
                    if verbose and colbad[i+1] <= verbose: print('   diff col', i+1, ref[0][i], 'mine', u, 'ref', v, 'row', x[0])
    return dict(rows_ref=len(r), rows_mine=len(m), hdr_ok=hdr_ok, order_ok=order_ok, missing=rowmiss, extra=rowextra, cellbad=cellbad, cells=cells, cols=dict(colbad))
if __name__ == '__main__':
    import glob, os
    base = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../../../shared/pcaps')
    pairs = []
    for csvf in sorted(glob.glob(base + '/generated/v3/*/*.csv')):
        d = os.path.basename(os.path.dirname(csvf)); n = os.path.basename(csvf)[:-len('_ISCX.csv')]
        pairs.append((d, n, csvf))
    import itertools
    # map dir back to source path
    srcs = [l.split('\t')[0] for l in open(base + '/SOURCES.tsv').read().splitlines()[1:]]
    srcs += ['derived_reordered/' + x for x in os.listdir(base + '/derived_reordered')]
    for d, n, csvf in pairs:
        cand = [s for s in srcs if os.path.dirname(s).replace('/', '_') == d and (os.path.basename(s) == n or os.path.basename(s) + '.pcap' == n)]
        if not cand: print('NO SOURCE', d, n); continue
        pcap = base + '/' + cand[0]
        res = [compare(pcap, csvf, s) for s in (False, True)]
        best = min((0, 1), key=lambda i: (res[i]['missing'] + res[i]['extra'], res[i]['cellbad']))
        if len(sys.argv) > 1 and (res[best]['cellbad'] or res[best]['missing'] or res[best]['extra']):
            compare(pcap, csvf, bool(best), verbose=int(sys.argv[1]))
        r = res[best]
        print(f"{cand[0]:70s} mode={'strip' if best else 'nostrip'} other_bad={res[1-best]['cellbad']} ref={r['rows_ref']} mine={r['rows_mine']} miss={r['missing']} extra={r['extra']} badcells={r['cellbad']}/{r['cells']} order={r['order_ok']} hdr={r['hdr_ok']} cols={r['cols']}")
