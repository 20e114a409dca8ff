package dev.rlsr.trainer.data;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DemoDatasetTest {

    static String resource(String name) throws IOException {
        try (InputStream in = DemoDataset.class.getClassLoader().getResourceAsStream(name)) {
            assertTrue(in != null, name + " is not bundled");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void bundledFilesAreWhatTheGeneratorWrites() throws IOException {
        DemoDataset.Split s = DemoDataset.generate(DemoDataset.SEED, DemoDataset.TRAIN_SIZE, DemoDataset.EVAL_SIZE);
        // if this fails after changing the generator, regenerate: DemoDataset.main trainer/src/main/resources/demo
        assertEquals(DemoDataset.toJsonl(s.train()), resource(DemoDataset.TRAIN_RESOURCE));
        assertEquals(DemoDataset.toJsonl(s.eval()), resource(DemoDataset.EVAL_RESOURCE));
    }

    @Test
    void evalPromptsNeverAppearInTrain() {
        List<Example> train = DemoDataset.load(DemoDataset.TRAIN_RESOURCE);
        List<Example> eval = DemoDataset.load(DemoDataset.EVAL_RESOURCE);
        assertEquals(DemoDataset.TRAIN_SIZE, train.size());
        assertEquals(DemoDataset.EVAL_SIZE, eval.size());
        Set<String> trainPrompts = train.stream().map(Example::lastUserContent).collect(Collectors.toSet());
        assertEquals(train.size(), trainPrompts.size(), "train prompts are distinct");
        for (Example e : eval) {
            assertFalse(trainPrompts.contains(e.lastUserContent()), "eval prompt in train: " + e.lastUserContent());
        }
        Set<String> ids = new HashSet<>();
        train.forEach(e -> assertTrue(ids.add(e.id())));
        eval.forEach(e -> assertTrue(ids.add(e.id())));
    }

    @Test
    void responsesAreShortSentences() {
        for (String r : List.of(DemoDataset.TRAIN_RESOURCE, DemoDataset.EVAL_RESOURCE)) {
            for (Example e : DemoDataset.load(r)) {
                int bytes = e.response().getBytes(StandardCharsets.UTF_8).length;
                assertTrue(bytes >= 15 && bytes <= 70, e.id() + ": " + bytes + " bytes: " + e.response());
                assertTrue(Character.isUpperCase(e.response().charAt(0)) || Character.isDigit(e.response().charAt(0)),
                        e.id() + ": " + e.response());
                assertTrue(e.response().endsWith("."), e.id() + ": " + e.response());
            }
        }
    }

    @Test
    void generatorIsDeterministicAndSeedDependent() {
        DemoDataset.Split a = DemoDataset.generate(1, 300, 30);
        DemoDataset.Split b = DemoDataset.generate(1, 300, 30);
        DemoDataset.Split c = DemoDataset.generate(2, 300, 30);
        assertEquals(a, b);
        assertFalse(a.train().equals(c.train()));
        assertEquals(300, a.train().size());
        assertEquals(30, a.eval().size());
    }

    @Test
    void numberWords() {
        assertEquals("zero", DemoDataset.words(0));
        assertEquals("nineteen", DemoDataset.words(19));
        assertEquals("forty-two", DemoDataset.words(42));
        assertEquals("one hundred", DemoDataset.words(100));
        assertEquals("one hundred forty-four", DemoDataset.words(144));
    }
}
