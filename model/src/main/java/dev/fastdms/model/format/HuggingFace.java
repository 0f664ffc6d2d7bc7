package dev.fastdms.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fastdms.cache.DmsConfig;
import dev.fastdms.model.ModelConfig;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face model directory: config.json, model.safetensors (or shards listed in model.safetensors.index.json),
 * optional tokenizer.json and dms_metadata.json. HF checkpoints rotate halves in RoPE, so q/k rows stay as stored.
 */
final class HuggingFace {
    private HuggingFace() {}

    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");
    private static final Map<String, String> LAYER_NAMES = Map.ofEntries(
            Map.entry("input_layernorm.weight", "attn_norm.weight"),
            Map.entry("self_attn.q_proj.weight", "attn_q.weight"),
            Map.entry("self_attn.k_proj.weight", "attn_k.weight"),
            Map.entry("self_attn.v_proj.weight", "attn_v.weight"),
            Map.entry("self_attn.o_proj.weight", "attn_output.weight"),
            Map.entry("self_attn.q_norm.weight", "attn_q_norm.weight"),
            Map.entry("self_attn.k_norm.weight", "attn_k_norm.weight"),
            Map.entry("post_attention_layernorm.weight", "ffn_norm.weight"),
            Map.entry("mlp.gate_proj.weight", "ffn_gate.weight"),
            Map.entry("mlp.up_proj.weight", "ffn_up.weight"),
            Map.entry("mlp.down_proj.weight", "ffn_down.weight"),
            // DMS adapter variant (NVIDIA Model-Optimizer, dms_separate_alpha): decisions from a separate projection
            Map.entry("self_attn.dms_proj_alpha.weight", "dms_alpha.weight"),
            Map.entry("self_attn.dms_proj_alpha.bias", "dms_alpha.bias"),
            Map.entry("self_attn.dms_proj_alpha_norm.weight", "dms_alpha_norm.weight"));

    static ModelFile open(Path dir) {
        Path cfgPath = dir.resolve("config.json");
        if (!Files.isRegularFile(cfgPath)) throw new ModelFormatException(dir + ": a model directory needs config.json");
        ObjectMapper om = new ObjectMapper();
        JsonNode cfg;
        try {
            cfg = om.readTree(cfgPath.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(cfgPath + ": not valid JSON");
        }
        if (cfg == null || !cfg.isObject()) throw new ModelFormatException(cfgPath + ": not a JSON object");
        String type = modelType(cfg, cfgPath);
        ModelConfig c = config(cfg, type, cfgPath, readDmsMetadata(dir, om));
        Arena arena = Arena.ofShared();
        try {
            Map<String, RawTensor> raw = new LinkedHashMap<>();
            Map<String, Path> weightMap = new LinkedHashMap<>();
            for (Path shard : shards(dir, om, weightMap)) raw.putAll(Safetensors.read(shard, arena));
            for (var e : weightMap.entrySet()) {
                if (!raw.containsKey(e.getKey())) {
                    throw new ModelFormatException(dir + ": " + e.getKey() + " is listed in model.safetensors.index.json but not in " + e.getValue().getFileName());
                }
            }
            Map<String, RawTensor> t = new LinkedHashMap<>();
            for (var e : raw.entrySet()) {
                String canon = canonical(e.getKey());
                if (canon == null) continue; // e.g. rotary inv_freq buffers
                RawTensor r = e.getValue();
                t.put(canon, new RawTensor(canon, r.type(), r.shape(), r.data()));
            }
            if (!t.containsKey("output.weight") && !c.tiedEmbeddings()) {
                throw new ModelFormatException(dir + ": tie_word_embeddings is false but lm_head.weight is missing");
            }
            if (c.tiedEmbeddings()) t.remove("output.weight");
            Path tok = dir.resolve("tokenizer.json");
            return new ModelFile("hf", dir, c, t, Map.of(), Files.isRegularFile(tok) ? tok : null, arena::close);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** model_type, or failing that the architectures list; anything but Llama and Qwen3 is refused by name. */
    private static String modelType(JsonNode cfg, Path cfgPath) {
        String type = cfg.path("model_type").asText("");
        if (type.isEmpty()) {
            for (JsonNode a : cfg.path("architectures")) {
                if (a.asText().equals("LlamaForCausalLM")) type = "llama";
                else if (a.asText().equals("Qwen3ForCausalLM")) type = "qwen3";
                else if (type.isEmpty()) type = a.asText();
            }
        }
        if (!type.equals("llama") && !type.equals("qwen3")) {
            throw new ModelFormatException(cfgPath + ": unsupported model_type '" + type + "' (llama and qwen3 are supported)");
        }
        return type;
    }

    static String canonical(String hf) {
        switch (hf) {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
            default:
        }
        Matcher m = LAYER.matcher(hf);
        if (m.matches()) {
            String s = LAYER_NAMES.get(m.group(2));
            return s == null ? null : "blk." + m.group(1) + "." + s;
        }
        return null;
    }

    /** The checkpoint name of a canonical tensor name: the inverse of {@link #canonical}, for writing HF directories; null when HF has none. */
    static String hfName(String canonical) {
        switch (canonical) {
            case "token_embd.weight": return "model.embed_tokens.weight";
            case "output_norm.weight": return "model.norm.weight";
            case "output.weight": return "lm_head.weight";
            default:
        }
        Matcher m = CANONICAL_LAYER.matcher(canonical);
        if (!m.matches()) return null;
        for (var e : LAYER_NAMES.entrySet()) if (e.getValue().equals(m.group(2))) return "model.layers." + m.group(1) + "." + e.getKey();
        return null;
    }

    private static final Pattern CANONICAL_LAYER = Pattern.compile("blk\\.(\\d+)\\.(.+)");

    private static Set<Path> shards(Path dir, ObjectMapper om, Map<String, Path> weightMap) {
        Path single = dir.resolve("model.safetensors");
        Path index = dir.resolve("model.safetensors.index.json");
        Set<Path> files = new LinkedHashSet<>();
        if (Files.isRegularFile(index)) {
            try {
                JsonNode map = om.readTree(index.toFile()).path("weight_map");
                for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
                    var e = it.next();
                    String file = e.getValue().asText("");
                    Path p = dir.resolve(file).normalize();
                    // shards live in the model directory: a name that leaves it is corrupt, not a path to follow
                    if (file.isEmpty() || !p.startsWith(dir.normalize()) || file.contains("/") || file.contains("\\")) {
                        throw new ModelFormatException(index + ": bad shard name '" + file + "' for " + e.getKey());
                    }
                    if (!Files.isRegularFile(p)) throw new ModelFormatException(index + ": shard " + p.getFileName() + " is missing");
                    files.add(p);
                    weightMap.put(e.getKey(), p);
                }
            } catch (IOException e) {
                throw new ModelFormatException(index + ": not valid JSON");
            }
            if (files.isEmpty()) throw new ModelFormatException(index + ": empty weight_map");
        } else if (Files.isRegularFile(single)) {
            files.add(single);
        } else {
            throw new ModelFormatException(dir + ": no model.safetensors or model.safetensors.index.json");
        }
        return files;
    }

    private static JsonNode readDmsMetadata(Path dir, ObjectMapper om) {
        Path p = dir.resolve("dms_metadata.json");
        if (!Files.isRegularFile(p)) return null;
        try {
            return om.readTree(p.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(p + ": not valid JSON");
        }
    }

    static ModelConfig config(JsonNode cfg, String type, Path where, JsonNode dmsMeta) {
        int dim = req(cfg, "hidden_size", where);
        int layers = req(cfg, "num_hidden_layers", where);
        int heads = req(cfg, "num_attention_heads", where);
        int kvHeads = cfg.path("num_key_value_heads").asInt(heads);
        int headDim = cfg.hasNonNull("head_dim") ? cfg.get("head_dim").asInt() : (heads > 0 ? dim / heads : 0);
        int ffn = req(cfg, "intermediate_size", where);
        int vocab = req(cfg, "vocab_size", where);
        int ctx = cfg.path("max_position_embeddings").asInt(2048);
        float eps = (float) cfg.path("rms_norm_eps").asDouble(1e-5);
        float theta = (float) cfg.path("rope_theta").asDouble(10000);
        ModelConfig.RopeScaling rs = null;
        JsonNode r = cfg.path("rope_scaling");
        if (r.isObject()) {
            String rt = r.path("rope_type").asText(r.path("type").asText(""));
            if (rt.equals("llama3")) {
                rs = new ModelConfig.RopeScaling((float) r.path("factor").asDouble(8), (float) r.path("low_freq_factor").asDouble(1),
                        (float) r.path("high_freq_factor").asDouble(4), r.path("original_max_position_embeddings").asInt(8192));
            } else if (!rt.isEmpty() && !rt.equals("default")) {
                throw new ModelFormatException(where + ": unsupported rope_scaling type '" + rt + "' (llama3 is supported)");
            }
        }
        // transformers' LlamaConfig and Qwen3Config both default to an untied head
        boolean tied = cfg.path("tie_word_embeddings").asBoolean(false);
        DmsConfig dms = dms(dmsMeta != null ? dmsMeta : cfg);
        if (dms == null && dmsMeta != null) dms = dms(cfg);
        return new ModelConfig(type, dim, layers, heads, kvHeads, headDim, ffn, vocab, ctx, eps, theta, rs, true, tied,
                type.equals("qwen3"), dms);
    }

    static DmsConfig dms(JsonNode n) {
        if (n == null || !n.hasNonNull("dms_window_size")) return null;
        double offset = n.hasNonNull("dms_alpha_offset") ? n.get("dms_alpha_offset").asDouble()
                : n.path("dms_initial_alpha_offset").asDouble(DmsConfig.DEFAULT_ALPHA_OFFSET);
        return new DmsConfig(n.get("dms_window_size").asInt(), (float) n.path("dms_alpha_scale").asDouble(DmsConfig.DEFAULT_ALPHA_SCALE),
                (float) offset, DmsConfig.Convention.NVIDIA);
    }

    private static int req(JsonNode cfg, String key, Path where) {
        JsonNode v = cfg.get(key);
        if (v == null || !v.canConvertToInt()) throw new ModelFormatException(where + ": missing or bad " + key);
        return v.asInt();
    }
}
