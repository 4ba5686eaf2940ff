//! The picture size an H.264 sequence parameter set declares: recorders that receive bare
//! Annex B (WebRTC) have no container to tell them, and players want it in the track header.

/// Bits of an RBSP (emulation prevention bytes already removed), read MSB first.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.at / 8)?;
        let b = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Exp-Golomb unsigned (ue(v)).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// Exp-Golomb signed (se(v)); only its length matters here.
    fn se(&mut self) -> Option<()> {
        self.ue().map(drop)
    }
}

/// The RBSP of a NAL unit: its payload without emulation prevention bytes (`00 00 03`).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Width and height in pixels (after cropping) of an SPS NAL unit (its header byte first).
pub fn dimensions(sps: &[u8]) -> Option<(u32, u32)> {
    if sps.first()? & 0x1F != 7 {
        return None;
    }
    let data = rbsp(&sps[1..]);
    let mut r = Bits { data: &data, at: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let (sub_w, sub_h) = match chroma_format {
        0 => (1, 1),
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = sub_w;
    let crop_y = sub_h * (2 - frame_mbs_only);
    let width = (width_mbs * 16).checked_sub((left + right) * crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub((top + bottom) * crop_y)?;
    Some((width, height))
}

fn skip_scaling_list(r: &mut Bits<'_>, size: u32) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let code = i64::from(r.ue()?);
            let delta = if code % 2 == 1 {
                (code + 1) / 2
            } else {
                -(code / 2)
            };
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// SPS units written by ffmpeg's libx264 (`-f lavfi -i testsrc=size=WxH -profile:v P`),
    /// emulation prevention bytes included.
    #[test]
    fn sizes_of_real_parameter_sets() {
        let high_320 = hex("6764000dacd94141fb011000000300100000030320f1429960");
        assert_eq!(dimensions(&high_320), Some((320, 240)));
        // 720 is not a multiple of 16: the SPS crops 8 lines off 736.
        let high_720p = hex("6764001facd9405005bb011000000300100000030320f1831960");
        assert_eq!(dimensions(&high_720p), Some((1280, 720)));
        let baseline_360 = hex("6742c01ed900a02ff97011000003000100000300320f162e48");
        assert_eq!(dimensions(&baseline_360), Some((640, 360)));
    }

    #[test]
    fn other_units_and_truncated_ones_have_no_size() {
        assert_eq!(dimensions(&[0x68, 0xce, 0x3c, 0x80]), None);
        assert_eq!(dimensions(&[0x67, 0x64]), None);
        assert_eq!(dimensions(&[]), None);
    }
}
