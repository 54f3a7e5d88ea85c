/**
 * Globs over dotted state-dict names (`clip.text_model.encoder.layers.0.self_attn.q_proj.weight`): `*` matches
 * within one segment, `**` across segments, `?` one character of a segment. Activation capture and the trainer's
 * frozen parameters both select modules and parameters this way.
 */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        source += '.*';
        i++;
      } else {
        source += '[^.:]*';
      }
    } else if (c === '?') {
      source += '[^.:]';
    } else {
      source += c.replace(/[\\^$+.()|{}[\]]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
