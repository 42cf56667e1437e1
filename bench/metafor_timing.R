# Time metafor on the benchmark data written by bench/bench_meta.py (same studies as Python).
#
# Usage: Rscript bench/metafor_timing.R <data.json> <k> <fun> <repeats> <cap_s>
#   fun: rma_dl | rma_reml | rma_ml | rma_pm | rma_ft | rma_hksj | leave1out | rma_mh | rma_glmm
# Prints one JSON line: {"fun", "k", "status": "ok" | "timeout" | "error", "median_s", "times_s"}.
# Only the model fit is timed (package loading and escalc are not). Each fit runs under
# setTimeLimit(elapsed = cap); the caller also kills this process if it overruns (BLAS code in
# rma() does not always check for interrupts).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
data <- fromJSON(args[1])
k <- as.integer(args[2])
fun <- args[3]
reps <- as.integer(args[4])
cap <- as.numeric(args[5])

d <- data[[as.character(k)]]
x <- d$x
n <- d$n
es <- escalc(measure = "PLO", xi = x, ni = n)  # add = 1/2, to = "only0" (defaults)
ft <- escalc(measure = "PFT", xi = x, ni = n)

# The engine's pools also give a prediction interval: predict() is timed with rma() (it is O(p)).
fit <- switch(fun,
  rma_dl = function() predict(rma(yi, vi, data = es, method = "DL")),
  rma_reml = function() predict(rma(yi, vi, data = es, method = "REML")),
  rma_ml = function() predict(rma(yi, vi, data = es, method = "ML")),
  rma_pm = function() predict(rma(yi, vi, data = es, method = "PM")),
  rma_ft = function() predict(rma(yi, vi, data = ft, method = "REML")),
  rma_hksj = function() predict(rma(yi, vi, data = es, method = "REML", test = "knha")),
  leave1out = function() leave1out(rma(yi, vi, data = es, method = "REML")),
  rma_mh = function() rma.mh(ai = x, n1i = n, ci = d$x2, n2i = d$n2, measure = "OR"),
  rma_glmm = function() predict(rma.glmm(measure = "PLO", xi = x, ni = n)),
  stop("unknown fun ", fun))

times <- numeric(0)
status <- "ok"
message <- ""
for (i in seq_len(reps)) {
  setTimeLimit(elapsed = cap, transient = TRUE)
  t <- tryCatch(system.time(suppressWarnings(fit()))[["elapsed"]],
                error = function(e) e)
  setTimeLimit(elapsed = Inf)
  if (inherits(t, "error")) {
    status <- if (grepl("time limit", conditionMessage(t))) "timeout" else "error"
    message <- conditionMessage(t)
    break
  }
  times <- c(times, t)
  if (sum(times) > cap) break  # enough: do not spend more than the cap on repeats
}

cat(toJSON(list(fun = fun, k = k, status = status, message = message,
                median_s = if (length(times)) median(times) else NA,
                times_s = I(times)), auto_unbox = TRUE, digits = NA, na = "null"), "\n")
