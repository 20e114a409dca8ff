package dev.rlsr.trainer.config;

import dev.rlsr.engine.model.GrpoLoss;
import dev.rlsr.trainer.reward.RewardSpec;
import dev.rlsr.trainer.rl.AdvantageNorm;
import dev.rlsr.trainer.rl.RlConfig;
import dev.rlsr.trainer.sft.SftConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RunConfigTest {

    @TempDir
    Path tmp;

    private Path write(String name, String text) throws Exception {
        Path p = tmp.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    @Test
    void fileThenOverridesInOrder() throws Exception {
        Path f = write("run.yaml", """
                model: {path: models/m}
                rl:
                  steps: 20
                  group_size: 4
                  sampling: {temperature: 0.7, stop_strings: ["\\n\\n"]}
                """);
        RunConfig c = RunConfig.load(f, List.of("rl.steps=50", "sft.lr=1e-4", "sft.packing=yes"));
        assertEquals("models/m", c.getString("model.path"));
        assertEquals(50, c.getInt("rl.steps"), "the override wins over the file");
        assertEquals(4, c.getInt("rl.group_size"));
        assertEquals(0.7, c.getDouble("rl.sampling.temperature"));
        assertEquals(List.of("\n\n"), c.getStringList("rl.sampling.stop_strings"));
        assertEquals(1e-4, c.getDouble("sft.lr"), "1e-4 without a dot is a number, not a string");
        assertTrue(c.getBool("sft.packing"));
        assertEquals(RunConfig.defaults().getInt("rl.prompts_per_step"), c.getInt("rl.prompts_per_step"),
                "untouched keys keep their defaults");
    }

    @Test
    void jsonFile() throws Exception {
        Path f = write("run.json", "{\"rl\": {\"steps\": 7, \"reward\": {\"cosine\": 0.7, \"rougeL\": 0.3}}}");
        RunConfig c = RunConfig.load(f, List.of());
        assertEquals(7, c.getInt("rl.steps"));
        RewardSpec r = c.getReward("rl.reward");
        assertEquals(Map.of("cosine", 0.7, "rougeL", 0.3), r.weights());
    }

    @Test
    void overrideValuesAreParsedAsYaml() {
        RunConfig c = RunConfig.defaults().withOverrides(List.of(
                "rl.sampling.stop_strings=[\".\", \"!\"]",
                "rl.reward=0.7*cosine+0.3*rougeL",
                "eval.reward={bleu: 1.0}",
                "data.train=data/a=b.jsonl",
                "reward.separator= | "));
        assertEquals(List.of(".", "!"), c.getStringList("rl.sampling.stop_strings"));
        assertEquals(Map.of("cosine", 0.7, "rougeL", 0.3), c.getReward("rl.reward").weights());
        assertEquals(Map.of("bleu", 1.0), c.getReward("eval.reward").weights());
        assertEquals("data/a=b.jsonl", c.getString("data.train"), "only the first '=' splits key and value");
        assertEquals(" | ", c.getString("reward.separator"), "strings are kept as typed");
    }

    @Test
    void unknownKeyInFileIsNamedWithSuggestion() throws Exception {
        Path f = write("bad.yaml", "rl:\n  group_sise: 4\n");
        ConfigException e = assertThrows(ConfigException.class, () -> RunConfig.load(f, List.of()));
        assertEquals("rl.group_sise", e.key());
        assertTrue(e.getMessage().contains("unknown key 'rl.group_sise'"), e.getMessage());
        assertTrue(e.getMessage().contains("did you mean 'rl.group_size'"), e.getMessage());
        assertTrue(e.getMessage().contains(f.toString()), "names the file: " + e.getMessage());
    }

    @Test
    void unknownOverrideKeyIsNamed() {
        ConfigException e = assertThrows(ConfigException.class,
                () -> RunConfig.defaults().withOverrides(List.of("rl.groupSize=4")));
        assertTrue(e.getMessage().contains("unknown key 'rl.groupSize'"), e.getMessage());
        assertTrue(e.getMessage().contains("did you mean 'rl.group_size'"), "camelCase is matched: " + e.getMessage());
        ConfigException top = assertThrows(ConfigException.class,
                () -> RunConfig.defaults().withOverrides(List.of("trainer.steps=4")));
        assertTrue(top.getMessage().contains("unknown key 'trainer.steps'"), top.getMessage());
    }

    @Test
    void badValuesAreNamed() {
        record Case(String override, String key, String fragment) {}
        for (Case c : List.of(
                new Case("rl.steps=abc", "rl.steps", "bad value 'abc'"),
                new Case("rl.steps=2.5", "rl.steps", "an integer"),
                new Case("rl.group_size=1", "rl.group_size", ">= 2"),
                new Case("rl.sampling.top_p=1.5", "rl.sampling.top_p", "in (0, 1]"),
                new Case("sft.packing=maybe", "sft.packing", "true or false"),
                new Case("run.device=tpu", "run.device", "one of auto, cpu, cuda"),
                new Case("rl.loss_level=mean", "rl.loss_level", "one of token, sequence, dr_grpo"),
                new Case("rl.reward=cosine+blue", "rl.reward", "blue"),
                new Case("sft.lr=-1", "sft.lr", ">= 0"))) {
            ConfigException e = assertThrows(ConfigException.class,
                    () -> RunConfig.defaults().withOverrides(List.of(c.override())), c.override());
            assertEquals(c.key(), e.key(), c.override());
            assertTrue(e.getMessage().startsWith(c.key() + ": "), e.getMessage());
            assertTrue(e.getMessage().contains(c.fragment()), c.override() + " -> " + e.getMessage());
        }
    }

    @Test
    void choicesAreCaseInsensitive() {
        RunConfig c = RunConfig.defaults().withOverrides(List.of("rl.loss_level=DR-GRPO", "run.device=CPU"));
        assertEquals("dr_grpo", c.getString("rl.loss_level"));
        assertEquals("cpu", c.getString("run.device"));
    }

    @Test
    void malformedOverridesAndFiles() throws Exception {
        ConfigException noEq = assertThrows(ConfigException.class,
                () -> RunConfig.defaults().withOverrides(List.of("rl.steps")));
        assertTrue(noEq.getMessage().contains("key=value"), noEq.getMessage());
        ConfigException section = assertThrows(ConfigException.class,
                () -> RunConfig.defaults().withOverrides(List.of("rl=5")));
        assertTrue(section.getMessage().contains("is a section"), section.getMessage());
        Path scalarSection = write("s.yaml", "rl: 5\n");
        ConfigException e1 = assertThrows(ConfigException.class, () -> RunConfig.load(scalarSection, List.of()));
        assertEquals("rl", e1.key());
        Path broken = write("b.yaml", "rl:\n  steps: [1, 2\n");
        ConfigException e2 = assertThrows(ConfigException.class, () -> RunConfig.load(broken, List.of()));
        assertTrue(e2.getMessage().contains("not valid YAML") && e2.getMessage().contains("line"), e2.getMessage());
        Path dup = write("d.yaml", "rl:\n  steps: 1\n  steps: 2\n");
        ConfigException e3 = assertThrows(ConfigException.class, () -> RunConfig.load(dup, List.of()));
        assertTrue(e3.getMessage().contains("steps"), e3.getMessage());
        ConfigException e4 = assertThrows(ConfigException.class,
                () -> RunConfig.load(tmp.resolve("missing.yaml"), List.of()));
        assertTrue(e4.getMessage().contains("does not exist"), e4.getMessage());
        Path empty = write("e.yaml", "");
        assertEquals(RunConfig.defaults(), RunConfig.load(empty, List.of()));
    }

    @Test
    void resolvedYamlReadsBackEqual() {
        RunConfig c = RunConfig.defaults().withOverrides(List.of("rl.steps=9", "rl.reward=0.5*cosine+0.5*bleu",
                "rl.sampling.stop_strings=[a]", "reward.separator=\\n"));
        RunConfig back = RunConfig.defaults().withText(c.toYaml(), "config.yaml", false);
        assertEquals(c, back);
        assertFalse(c.toYaml().isBlank());
    }

    @Test
    void mapsOntoTrainerRecords() {
        RunConfig c = RunConfig.defaults().withOverrides(List.of("sft.epochs=3", "sft.batch_size=4",
                "sft.grad_accum=2", "sft.prompt_masking=false", "rl.group_size=6", "rl.prompts_per_step=5",
                "rl.loss_level=sequence", "rl.advantage_norm=none_std", "rl.sampling.max_new_tokens=33",
                "rl.sampling.top_k=5", "rl.beta=0.04"));
        SftConfig s = TrainerConfigs.sft(c);
        assertEquals(3, s.epochs());
        assertEquals(4, s.batchSize());
        assertEquals(2, s.gradAccum());
        assertFalse(s.promptMasking());
        RlConfig r = TrainerConfigs.rl(c);
        assertEquals(6, r.groupSize());
        assertEquals(5, r.promptsPerStep());
        assertEquals(GrpoLoss.Level.SEQUENCE, r.lossLevel());
        assertEquals(AdvantageNorm.NONE_STD, r.advantageNorm());
        assertEquals(33, r.sampling().maxNewTokens());
        assertEquals(5, r.sampling().topK());
        assertEquals(0.04, r.beta());
    }

    @Test
    void recordChecksBecomeSectionErrors() {
        // clip_low = 1 passes the key's range [0, 1] but not RlConfig's 0 <= clip_low < 1
        ConfigException e = assertThrows(ConfigException.class,
                () -> TrainerConfigs.rl(RunConfig.defaults().withOverrides(List.of("rl.clip_low=1"))));
        assertEquals("rl", e.key());
        assertTrue(e.getMessage().contains("clip_low"), e.getMessage());
    }

    /** Settings under which GRPO cannot learn, or sampling is undefined, fail when the config is read. */
    @Test
    void greedyRolloutsAndEmptyNucleusAreRefusedWhenRead() {
        record Case(String override, String key, String fragment) {}
        for (Case c : List.of(
                new Case("rl.sampling.temperature=0", "rl.sampling.temperature", "> 0"),
                new Case("rl.sampling.top_k=1", "rl.sampling.top_k", "greedy"),
                new Case("rl.sampling.top_p=0", "rl.sampling.top_p", "in (0, 1]"),
                new Case("eval.sampling.top_p=0", "eval.sampling.top_p", "in (0, 1]"))) {
            ConfigException e = assertThrows(ConfigException.class,
                    () -> RunConfig.defaults().withOverrides(List.of(c.override())), c.override());
            assertEquals(c.key(), e.key(), c.override());
            assertTrue(e.getMessage().contains(c.fragment()), c.override() + " -> " + e.getMessage());
        }
        // greedy evaluation stays the default and allowed
        assertEquals(0.0, RunConfig.defaults().withOverrides(List.of("eval.sampling.temperature=0"))
                .getDouble("eval.sampling.temperature"));
        assertEquals(1, RunConfig.defaults().withOverrides(List.of("eval.sampling.top_k=1"))
                .getInt("eval.sampling.top_k"));
    }

    @Test
    void multiDocumentYamlIsRefused() throws Exception {
        Path f = tmp.resolve("two.yaml");
        Files.writeString(f, "rl:\n  steps: 5\n---\nrl:\n  steps: 50\n");
        ConfigException e = assertThrows(ConfigException.class, () -> RunConfig.defaults().withFile(f));
        assertTrue(e.getMessage().contains("2 YAML documents"), e.getMessage());
        // a single document with the optional start marker is fine
        Files.writeString(f, "---\nrl:\n  steps: 5\n");
        assertEquals(5, RunConfig.defaults().withFile(f).getInt("rl.steps"));
    }

    @Test
    void everyDefaultPassesItsOwnCheck() {
        for (ConfigSchema.Key k : ConfigSchema.keys().values()) {
            assertEquals(k.defaultValue(), ConfigSchema.coerce(k, k.defaultValue(), "defaults"), k.path());
        }
        TrainerConfigs.sft(RunConfig.defaults());
        TrainerConfigs.rl(RunConfig.defaults());
    }
}
