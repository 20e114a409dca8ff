package dev.rlsr.engine.io;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The JDK's file exceptions carry only the path as their message; the user must read the cause. */
class IoMessagesTest {

    @Test
    void namesTheCause() {
        assertEquals("permission denied: /runs/x/config.yaml",
                IoMessages.describe(new AccessDeniedException("/runs/x/config.yaml")));
        assertEquals("no such file or directory: /m/model.safetensors",
                IoMessages.describe(new NoSuchFileException("/m/model.safetensors")));
        assertEquals("permission denied: /a -> /b", IoMessages.describe(new AccessDeniedException("/a", "/b", null)));
        assertEquals("disk full", IoMessages.describe(new IOException("disk full")));
    }
}
