/**
 * SFT / RLSR datasets: {@link dev.rlsr.trainer.data.Example} (prompt messages x, reference answer y*), streamed from
 * JSONL by {@link dev.rlsr.trainer.data.JsonlReader} in prompt/response, Alpaca or chat layout (detected per file),
 * split deterministically by {@link dev.rlsr.trainer.data.DataSplit} (hash of id and seed, stable while streaming),
 * filtered by {@link dev.rlsr.trainer.data.TokenLengthFilter}; bad lines raise a
 * {@link dev.rlsr.trainer.data.DatasetException} {@code <file>:<line>: <what is wrong>} or are skipped and counted.
 * {@link dev.rlsr.trainer.data.DemoDataset} generates the bundled demo set ({@code demo/train.jsonl},
 * {@code demo/eval.jsonl}).
 */
package dev.rlsr.trainer.data;
