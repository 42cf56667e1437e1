"""reproduce.R: the slice's data and one metafor call per pooled number the app showed, each
result checked against the number as the app printed it.

The script stands on its own: the counts are written into it, so it needs R, metafor (and lme4
for the GLMM) and nothing of this app. Each number is compared to the printed value to its
printed decimals (a proportion 71.0% agrees when R gives 70.95-71.05%): the check is exactly
"R gives the number you saw". Every number is listed with R's value and the app's; any
difference stops the script with a message naming each number that differs (exit status 1),
and when all agree it says so and exits 0.

The calls (docs/methods.md; shared spec §2.4):

- GLMM: `rma.glmm(measure = "PLO")`, `predict(transf = transf.ilogit)`;
- logit (or Freeman-Tukey) inverse variance: `escalc` then `rma(method = REML | DL, test =
  "knha" | "z")`, back-transformed with `transf.ilogit` (or `transf.ipft.hm` at the harmonic
  mean of n);
- one study: its proportion and `binom.test`'s exact (Clopper-Pearson) CI;
- risk ratios: `rma.mh(measure = "RR")`;
- the test for subgroup differences: `rma(mods = ~ factor(group))` (common τ²) and the Q of the
  subgroup estimates each pooled with its own τ² (`rma(est, sei, mods = ~ factor(group),
  method = "FE")`);
- the dose meta-regression: `rma(mods = ~ I(dose / 100))`.

Text from the data (cohort labels, subgroup names) only ever appears inside R strings, escaped;
comments carry the app's own words with control characters removed, so an uploaded label can
never become code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from evidence.meta.options import TEST_FOR_CI
from evidence.report.numbers import (
    Check,
    DoseRegression,
    Numbers,
    Proportion,
    Ratio,
    Subgroups,
    checks_of,
)

METAFOR_AT_LEAST = "3.8.1"


def r_string(text: object) -> str:
    """`text` as an R string literal: quotes, backslashes and control characters escaped, every
    non-ASCII character as \\u escape (the script reads the same in any locale)."""
    out = []
    for char in str(text):
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif code == 0:
            continue  # R strings cannot hold NUL
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code > 0xFFFF:
            out.append(f"\\U{{{code:x}}}")
        elif code > 0x7E:
            out.append(f"\\u{{{code:04x}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


_ASCII = {"·": "-", "≥": ">=", "≤": "<=", "²": "2", "–": "-", "—": "-", "τ": "tau"}


def r_comment(text: str) -> str:
    """One comment line: printable ASCII only (anything else becomes a space or '?')."""
    for char, ascii_text in _ASCII.items():
        text = text.replace(char, ascii_text)
    clean = re.sub(r"[\x00-\x1f\x7f]", " ", text)
    return "# " + clean.encode("ascii", "replace").decode("ascii")


def r_vector(values: Iterable[object]) -> str:
    items = [
        r_string(v) if isinstance(v, str) else _r_number(v)  # type: ignore[arg-type]
        for v in values
    ]
    return f"c({', '.join(items)})"


def _r_number(value: float | int) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


PRELUDE = r"""suppressPackageStartupMessages(library(metafor))
stopifnot(packageVersion("metafor") >= "{metafor}")

checked <- 0L
differences <- character(0)
# One number the app showed: R's value against the printed one, to its printed decimals.
check <- function(number, r_value, shown, digits) {{
  checked <<- checked + 1L
  r_text <- formatC(r_value, format = "f", digits = digits)
  shown_text <- formatC(shown, format = "f", digits = digits)
  ok <- length(r_value) == 1 && is.finite(r_value) &&
    abs(r_value - shown) <= 0.5 * 10^(-digits) + 1e-9
  cat(sprintf("%s %s: R %s, app %s\n", if (ok) "ok  " else "DIFF", number, r_text, shown_text))
  if (!ok) {{
    differences <<- c(differences, sprintf("%s: R gives %s, the app showed %s", number, r_text,
                                           shown_text))
  }}
  invisible(ok)
}}
"""

EPILOGUE = r"""
cat("\n")
if (length(differences) > 0) {
  stop(sprintf("%d of %d numbers differ from what the app showed:\n%s", length(differences),
               checked, paste("-", differences, collapse = "\n")), call. = FALSE)
}
cat(sprintf("All %d numbers agree with what the app showed (metafor %s, %s).\n", checked,
            as.character(packageVersion("metafor")), R.version.string))
"""


def script(numbers: Numbers, header: Sequence[str]) -> str:
    """The whole script; `header` lines (provenance) go at its top as comments."""
    parts = [
        r_comment("reproduce.R: re-fits every pooled number the anakinra-for-ICANS dashboard"),
        r_comment("showed for one slice, with R metafor, and checks each against the printed"),
        r_comment("value. Run: Rscript reproduce.R  (exit 0: all agree; 1: a number differs)."),
        *(r_comment(line) for line in header),
        "",
        PRELUDE.format(metafor=METAFOR_AT_LEAST),
    ]
    if not any(True for _ in numbers.items()):
        parts.append('cat("This slice shows no pooled number.\\n")')
    for item in numbers.items():
        parts.append(block(item))
    parts.append(EPILOGUE)
    return "\n".join(parts)


def block(item: Proportion | Ratio | Subgroups | DoseRegression) -> str:
    """One item's data, fit and checks."""
    if isinstance(item, Proportion):
        code, values = _proportion(item)
    elif isinstance(item, Ratio):
        code, values = _ratio(item)
    elif isinstance(item, Subgroups):
        code, values = _subgroups(item)
    else:
        code, values = _regression(item)
    lines = [r_comment(f"---- {item.title} ----"), "local({", *code]
    for check in checks_of(item):
        expression = values[check.what]
        lines.append(_check_line(item.title, check, expression))
    lines.append("})")
    return "\n".join(lines) + "\n"


def _check_line(title: str, check: Check, expression: str) -> str:
    number = r_string(f"{title}: {check.what}")
    return f"  check({number}, {expression}, {check.printed}, {check.digits})"


def _counts_frame(name: str, labels: Sequence[str], events: Sequence[int], totals: Sequence[int],
                  **extra: Sequence[object]) -> str:  # fmt: skip
    columns = [
        f"study = {r_vector(labels)}",
        f"xi = {r_vector(events)}",
        f"ni = {r_vector(totals)}",
    ]
    columns += [f"{key} = {r_vector(values)}" for key, values in extra.items()]
    return f"  {name} <- data.frame({', '.join(columns)}, stringsAsFactors = FALSE)"


def _fit_pool(
    data: str, method: str, transform: str, ci: str, k: int
) -> tuple[list[str], dict[str, str]]:
    """R lines fitting one pool (as `m` with predictions `p`) the way the engine fitted it."""
    measure = "PFT" if transform == "freeman-tukey" else "PLO"
    if transform == "freeman-tukey":
        back = f"transf = transf.ipft.hm, targs = list(ni = {data}$ni)"
    else:
        back = "transf = transf.ilogit"
    if method == "GLMM":
        lines = [
            f'  m <- rma.glmm(measure = "PLO", xi = xi, ni = ni, data = {data})',
            "  p <- predict(m, transf = transf.ilogit)",
        ]
    elif method == "single study" or k == 1:
        lines = [
            f'  es <- escalc(measure = "{measure}", xi = xi, ni = ni, data = {data})',
            '  m <- rma(yi, vi, data = es, method = "FE")',
            f"  p <- predict(m, {back})",
        ]
    else:
        test = TEST_FOR_CI[ci]
        lines = [
            f'  es <- escalc(measure = "{measure}", xi = xi, ni = ni, data = {data})',
            f'  m <- rma(yi, vi, data = es, method = "{method}", test = "{test}")',
            f"  p <- predict(m, {back})",
        ]
    values = {
        "pooled proportion (%)": "100 * p$pred",
        "95% CI, lower (%)": "100 * p$ci.lb",
        "95% CI, upper (%)": "100 * p$ci.ub",
        "prediction interval, lower (%)": "100 * p$pi.lb",
        "prediction interval, upper (%)": "100 * p$pi.ub",
        "tau²": "m$tau2",
        "I² (%)": "m$I2",
    }
    return lines, values


def _proportion(item: Proportion) -> tuple[list[str], dict[str, str]]:
    pooled = item.pooled
    result = pooled.result
    assert result is not None
    rows = pooled.rows
    lines = [
        _counts_frame(
            "dat",
            [str(v) for v in rows["label"]],
            [int(v) for v in rows["events"]],
            [int(v) for v in rows["total"]],
        )
    ]
    if result.k == 1:
        lines.append("  b <- binom.test(dat$xi, dat$ni)")
        return lines, {
            "proportion of the one study (%)": "100 * dat$xi / dat$ni",
            "exact 95% CI, lower (%)": "100 * b$conf.int[1]",
            "exact 95% CI, upper (%)": "100 * b$conf.int[2]",
        }
    fit, values = _fit_pool("dat", result.method, result.transform, result.ci_method, result.k)
    if result.method != "GLMM" and result.method_requested == "GLMM":
        lines.append(r_comment("  the GLMM did not converge in the app: it showed logit REML"))
    return lines + fit, values


def _ratio(item: Ratio) -> tuple[list[str], dict[str, str]]:
    lines = [
        "  two <- data.frame("
        f"study = {r_vector(item.labels)}, ai = {r_vector(item.events_a)}, "
        f"n1i = {r_vector(item.total_a)}, ci = {r_vector(item.events_b)}, "
        f"n2i = {r_vector(item.total_b)}, stringsAsFactors = FALSE)",
        '  m <- rma.mh(measure = "RR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = two)',
        "  rr <- exp(c(m$beta[1], m$ci.lb, m$ci.ub))",
        "  risk <- sum(two$ci) / sum(two$n2i)  # the comparator's risk (GRADE's absolute effect)",
    ]
    values = {
        "risk ratio": "rr[1]",
        "risk ratio 95% CI, lower": "rr[2]",
        "risk ratio 95% CI, upper": "rr[3]",
        "risk with the comparator per 1,000": "1000 * risk",
        "difference per 1,000": "1000 * risk * (rr[1] - 1)",
        "difference per 1,000, 95% CI lower": "1000 * risk * (rr[2] - 1)",
        "difference per 1,000, 95% CI upper": "1000 * risk * (rr[3] - 1)",
    }
    return lines, values


def _subgroups(item: Subgroups) -> tuple[list[str], dict[str, str]]:
    result = item.result
    rows = item.pooled.rows
    lines = [
        _counts_frame(
            "dat",
            [str(v) for v in rows["label"]],
            [int(v) for v in rows["events"]],
            [int(v) for v in rows["total"]],
            group=list(item.groups),
        ),
        "  est <- c(); se <- c()",
    ]
    values: dict[str, str] = {}
    for index, group in enumerate(result.subgroups, start=1):
        pool = group.result
        fit, fitted = _fit_pool("sub", pool.method, pool.transform, pool.ci_method, pool.k)
        lines.append(f"  sub <- dat[dat$group == {r_string(group.name)}, ]")
        lines += fit
        lines += [
            f"  p{index} <- p",
            "  est <- c(est, as.numeric(coef(m)[1])); se <- c(se, as.numeric(m$se[1]))",
        ]
        for what in ("pooled proportion", "95% CI, lower", "95% CI, upper"):
            expression = fitted[f"{what} (%)"].replace("p$", f"p{index}$")
            values[f"subgroup {group.name}: {what} (%)"] = expression
    test = result.moderator_test
    if test.statistic is not None:
        method = "REML" if result.method == "GLMM" else result.method
        if any("DL used for the test" in note for note in result.notes):
            method = "DL"
        transform = "logit" if result.method == "GLMM" else result.transform
        measure = "PFT" if transform == "freeman-tukey" else "PLO"
        lines += [
            r_comment("  common tau²: a categorical moderator (mixed-effects model)"),
            f'  es <- escalc(measure = "{measure}", xi = xi, ni = ni, data = dat)',
            f'  mm <- rma(yi, vi, mods = ~ factor(group), data = es, method = "{method}", '
            f'test = "{TEST_FOR_CI[result.ci_method]}")',
        ]
        name = "F" if test.distribution == "F" else "Q"
        values[f"test for subgroup differences (common tau²): {name}"] = "mm$QM"
        values["test for subgroup differences (common tau²): p"] = "mm$QMp"
    if result.separate_tau2_test.statistic is not None:
        names = r_vector([g.name for g in result.subgroups])
        lines += [
            r_comment("  a tau² per subgroup: Q of the subgroup estimates (fixed effect)"),
            f"  cmp <- data.frame(est = est, se = se, g = {names}, stringsAsFactors = FALSE)",
            '  mq <- rma(yi = est, sei = se, mods = ~ factor(g), data = cmp, method = "FE")',
        ]
        values["test with a tau² per subgroup: Q"] = "mq$QM"
        values["test with a tau² per subgroup: p"] = "mq$QMp"
    return lines, values


def _regression(item: DoseRegression) -> tuple[list[str], dict[str, str]]:
    result = item.result
    points = item.points
    lines = [
        _counts_frame(
            "dat",
            [str(v) for v in points["label"]],
            [int(v) for v in points["events"]],
            [int(v) for v in points["total"]],
            dose=[float(v) for v in points["dose_mid"]],
        ),
        r_comment("  dose = the midpoint of each cohort's reported mg/day range"),
        '  es <- escalc(measure = "PLO", xi = xi, ni = ni, data = dat)',
        f'  m <- rma(yi, vi, mods = ~ I(dose / 100), data = es, method = "{result.method}", '
        f'test = "{TEST_FOR_CI[result.ci_method]}")',
    ]
    values = {
        "slope per 100 mg/day (logit)": "as.numeric(coef(m)[2])",
        "slope 95% CI, lower": "m$ci.lb[2]",
        "slope 95% CI, upper": "m$ci.ub[2]",
        "slope p": "m$pval[2]",
        "residual tau²": "m$tau2",
    }
    return lines, values
