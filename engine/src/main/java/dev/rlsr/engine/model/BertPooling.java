package dev.rlsr.engine.model;

/** How a BERT encoder turns {@code last_hidden_state (B,T,C)} into one vector per text (sentence-transformers). */
public enum BertPooling {
    /** Mean over the positions whose attention mask is 1 (special tokens included, padding excluded). */
    MEAN,
    /** The hidden state of the first token ([CLS]). */
    CLS
}
