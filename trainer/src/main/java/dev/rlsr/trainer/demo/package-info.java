/** {@code rlsr demo}: base model from scratch, SFT, RLSR and SFT+RLSR on the bundled demo set, on the CPU. */
package dev.rlsr.trainer.demo;
