#!/usr/bin/env bash
# tools/plot on small generated inputs (the ctest plot_tools):
#
#   tests/plot/check_plots.sh TOOLS_PLOT WORKDIR
#
# Both plots must come out as SVG documents that name every run or row and
# carry every epoch's point, a single-epoch run must draw without a gnuplot
# warning, and each kind of bad input must fail with its message and write
# no plot.
set -euo pipefail
plot=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# SVG FILE then checks; exits 1 naming each one that does not hold:
#   text:STRING           a <text> element reads STRING
#   points:GROUP:V1/V2..  the first gnuplot group GROUP (gnuplot_plot_1a: the
#                         first curve of the first panel) has a point marker
#                         per value, at heights that one straight map from
#                         value to height shared by the panel's groups gives
#   bars:R1/R2..          the bars, top to bottom, go from 1 to each ratio on
#                         one log scale, in one colour at or above 1 and
#                         another below
check_svg() {
  python3 - "$@" <<'EOF'
import math, sys, xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
path, checks = sys.argv[1], sys.argv[2:]
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"{path}: not a readable XML document: {e}")
if root.tag != NS + "svg":
    sys.exit(f"{path}: the root element is {root.tag}, not an SVG <svg>")
texts = {"".join(t.itertext()).strip() for t in root.iter(NS + "text")}
groups = {}
for g in root.iter(NS + "g"):
    groups.setdefault(g.get("id"), g)  # the first: the data, later ones the key
bad = []
panels = {}  # panel letter -> [(value, height)]
for check in checks:
    kind, _, what = check.partition(":")
    if kind == "text" and what not in texts:
        bad.append(f"no text '{what}' (texts: {sorted(texts)})")
    elif kind == "points":
        group, values = what.rsplit(":", 1)
        values = [float(v) for v in values.split("/")]
        if group not in groups:
            bad.append(f"no group {group}")
            continue
        heights = [float(u.get("transform").split(",")[1].split(")")[0])
                   for u in groups[group].iter(NS + "use")]
        if len(heights) != len(values):
            bad.append(f"group {group}: {len(heights)} point markers, expected {len(values)}")
            continue
        panels.setdefault(group[-1], []).extend(zip(values, heights))
    elif kind == "bars":
        ratios = [float(r) for r in what.split("/")]
        polygons = [p for p in groups.get("gnuplot_plot_1", ET.Element("g")).iter(NS + "polygon")
                    if p.get("fill", "none") != "none"]
        if len(polygons) != len(ratios):
            bad.append(f"{len(polygons)} bars, expected {len(ratios)}")
            continue
        one, scale, colour = set(), set(), {}
        for r, p in zip(ratios, polygons):
            xs = [float(pt.split(",")[0]) for pt in p.get("points").split()]
            left, right = min(xs), max(xs)
            one.add(round(left if r >= 1 else right, 1))
            scale.add(round((right - left) / abs(math.log(r)), 0))
            colour.setdefault(r >= 1, set()).add(p.get("fill"))
        if len(one) != 1 or len(scale) != 1:
            bad.append(f"bars do not start at one x or share one log scale: starts {one}, "
                       f"pixels per unit of ln(ratio) {scale}")
        if any(len(c) != 1 for c in colour.values()) or len(colour) == 2 and \
                colour[True] == colour[False]:
            bad.append(f"bar colours {colour}: one at or above 1, another below")
for letter, pairs in panels.items():
    (v0, h0), (v1, h1) = min(pairs), max(pairs)
    if v1 == v0:
        continue
    for v, h in pairs:
        if abs(h0 + (v - v0) * (h1 - h0) / (v1 - v0) - h) > 0.2:
            bad.append(f"panel {letter}: value {v} drawn at height {h}, off the panel's scale")
if bad:
    sys.exit(f"{path}: " + "; ".join(bad))
EOF
}

# Runs tools/plot, expecting failure with a message that contains $1 and no
# file at $2; the rest are tools/plot's arguments.
expect_error() {
  local message=$1 out=$2 status=0
  shift 2
  rm -f "$out"
  "$plot" "$@" -o "$out" >stdout.txt 2>stderr.txt || status=$?
  if [ "$status" = 0 ]; then
    fail "tools/plot $* succeeded; expected an error with '$message'"
  elif ! grep -qF -- "$message" stderr.txt; then
    fail "tools/plot $*: the message lacks '$message': $(cat stderr.txt)"
  elif [ -e "$out" ]; then
    fail "tools/plot $* failed but wrote $out"
  else
    echo "ok: $* -> $(tail -n 1 stderr.txt)"
  fi
}

# ---------------------------------------------------------- training curves
# A run as ktnn::fit writes it (3 epochs) plus test columns, a run of one
# epoch without them, labels with spaces and XML's special characters.
cat >mlp.csv <<'EOF'
epoch,loss,accuracy,seconds,samples_per_second,samples,test_loss,test_accuracy
1,0.508476262,0.820366667,1.2,50000,60000,0.43,0.84
2,0.366604879,0.8663,1.1,54545,60000,0.39,0.86
3,0.325802035,0.8809,1.1,54545,60000,0.36,0.87
EOF
printf 'epoch,loss,accuracy,seconds,samples_per_second,samples\r\n1,0.45,0.84,19.3,3108,60000\r\n' >cnn.csv

"$plot" curves -o curves.svg --title "plot test" "MLP run=mlp.csv" "CNN & <one>=cnn.csv" 2>stderr.txt ||
  fail "curves: $(cat stderr.txt)"
if grep -qi warning stderr.txt; then fail "curves warned: $(cat stderr.txt)"; fi
check_svg curves.svg "text:plot test" "text:loss per epoch" "text:accuracy per epoch" \
  "text:MLP run (train)" "text:MLP run (test)" "text:CNN & <one> (train)" \
  "points:gnuplot_plot_1a:0.508476262/0.366604879/0.325802035" \
  "points:gnuplot_plot_2a:0.43/0.39/0.36" "points:gnuplot_plot_3a:0.45" \
  "points:gnuplot_plot_1b:0.820366667/0.8663/0.8809" "points:gnuplot_plot_2b:0.84/0.86/0.87" \
  "points:gnuplot_plot_3b:0.84" ||
  fail "curves.svg"

# One file of one epoch on its own (every axis range would be a single value),
# labelled by its file name.
"$plot" curves -o one.svg cnn.csv 2>stderr.txt || fail "one epoch: $(cat stderr.txt)"
if grep -qi warning stderr.txt; then fail "one epoch warned: $(cat stderr.txt)"; fi
check_svg one.svg "text:cnn" "points:gnuplot_plot_1a:0.45" "points:gnuplot_plot_1b:0.84" ||
  fail "one.svg"

: >empty.csv
printf 'epoch,loss,accuracy\n' >header_only.csv
printf 'step,value\n1,0.5\n' >other.csv
(cat mlp.csv; tail -n +2 mlp.csv) >appended.csv
printf 'epoch,loss,accuracy\n1,0.5,0.8\n2,x,0.9\n' >not_a_number.csv
printf 'epoch,loss,accuracy\n1,0.5,0.8\n2,0.4\n' >short_line.csv
expect_error "missing.csv: no such file" bad.svg curves missing.csv
expect_error "empty.csv: the file is empty" bad.svg curves empty.csv
expect_error "header_only.csv: a header and no epochs" bad.svg curves header_only.csv
expect_error "other.csv line 1: the header has no column epoch loss accuracy" bad.svg curves other.csv
expect_error "appended.csv line 5: epoch 1 after epoch 3: more than one run" bad.svg curves appended.csv
expect_error 'not_a_number.csv line 3: loss "x" is not a number' bad.svg curves not_a_number.csv
expect_error "short_line.csv line 3: 2 fields where the header has 3" bad.svg curves short_line.csv
# One bad file among good ones fails the whole plot.
expect_error "other.csv line 1" bad.svg curves mlp.csv other.csv

# -------------------------------------------------------- benchmark chart
cat >summary.csv <<'EOF'
benchmark,ktnn_value,peer,peer_value,unit,ratio
Fashion-MNIST MLP training,250000,PyTorch,117500,samples/s,2.12766
GEMM square/m:1024/n:1024/k:1024,3.4e+11,OpenBLAS,4.7e+11,FLOP/s,0.723404
physics-informed step (float),735.4,PyTorch,200.4,steps/s,3.66966
EOF
"$plot" bench -o chart.svg --title "chart test" summary.csv 2>stderr.txt ||
  fail "bench: $(cat stderr.txt)"
if grep -qi warning stderr.txt; then fail "bench warned: $(cat stderr.txt)"; fi
check_svg chart.svg "text:chart test" "text:Fashion-MNIST MLP training vs PyTorch" \
  "text:GEMM square/m:1024/n:1024/k:1024 vs OpenBLAS" "text:physics-informed step (float) vs PyTorch" \
  "text:2.13x (250 k vs 118 k samples/s)" "text:0.72x (340 G vs 470 G FLOP/s)" \
  "bars:2.12766/0.723404/3.66966" ||
  fail "chart.svg"

printf 'benchmark,value\nx,1\n' >wrong_header.csv
printf 'benchmark,ktnn_value,peer,peer_value,unit,ratio\nx,2,p,1,ms,2\n' >time_unit.csv
printf 'benchmark,ktnn_value,peer,peer_value,unit,ratio\nx,2,p,1,FLOP/s,0.5\n' >swapped.csv
printf 'benchmark,ktnn_value,peer,peer_value,unit,ratio\n' >no_rows.csv
expect_error "wrong_header.csv line 1: the header has no column ktnn_value peer peer_value unit ratio" \
  bad.svg bench wrong_header.csv
expect_error 'time_unit.csv line 2: unit "ms" is not a rate' bad.svg bench time_unit.csv
expect_error "swapped.csv line 2: ratio 0.5 is not ktnn_value / peer_value" bad.svg bench swapped.csv
expect_error "no_rows.csv: a header and no comparisons" bad.svg bench no_rows.csv
expect_error "missing.csv: no such file" bad.svg bench missing.csv

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed (inputs and outputs in $work)" >&2
  exit 1
fi
echo "all plot checks passed (outputs in $work)"
