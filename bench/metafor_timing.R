# Time metafor on the benchmark data written by bench/bench_meta.py (same studies as Python).
#
# Usage: Rscript bench/metafor_timing.R <data.json> <k> <fun: rma_reml | rma_glmm> <repeats> <cap_s>
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

fit <- switch(fun,
  rma_reml = function() rma(yi, vi, data = es, method = "REML"),
  rma_glmm = function() rma.glmm(measure = "PLO", xi = x, ni = n),
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
