/**
 * Sentence encoders E for the RLSR reward: {@code embed(texts (N)) -> embeddings (N,D)}, rows L2-normalised.
 * Legend: N = texts in one call, B = texts in one model batch (at most batchSize), T = tokens in that batch
 * (at most maxTokens), D = embedding width.
 */
package dev.rlsr.trainer.encoder;
