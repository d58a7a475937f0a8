//! ARM's deterministic hashes: `uniqueString()` and `guid()`.

use uuid::Uuid;

/// The namespace ARM's `guid()` function uses for its name-based UUIDs.
const ARM_GUID_NAMESPACE: Uuid = Uuid::from_u128(0x11fb06fb_712d_4ddd_98c7_e71bbd588830);

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `uniqueString(a, b, ...)`: ARM's 64-bit Murmur variant over the UTF-8 bytes of the
/// arguments joined with '-', as 13 base32 characters taken from the high bits.
pub fn unique_string(parts: &[&str]) -> String {
    let mut hash = murmur64(parts.join("-").as_bytes());
    let mut out = String::with_capacity(13);
    for _ in 0..13 {
        out.push(BASE32[(hash >> 59) as usize] as char);
        hash <<= 5;
    }
    out
}

/// `guid(a, b, ...)`: a version-5 UUID over the arguments joined with '-' in ARM's namespace.
pub fn guid(parts: &[&str]) -> String {
    Uuid::new_v5(&ARM_GUID_NAMESPACE, parts.join("-").as_bytes()).to_string()
}

fn read_u32(data: &[u8]) -> u32 {
    data.iter()
        .take(4)
        .enumerate()
        .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (8 * i)))
}

/// The 64-bit MurmurHash variant of ARM's expression engine (seed 0).
pub fn murmur64(data: &[u8]) -> u64 {
    const C1: u32 = 2_869_860_233;
    const C2: u32 = 597_399_067;
    let length = data.len();
    let (mut h1, mut h2) = (0u32, 0u32);
    let mut index = 0;
    while index + 7 < length {
        let mut k1 = read_u32(&data[index..]);
        let mut k2 = read_u32(&data[index + 4..]);
        k1 = k1.wrapping_mul(C2).rotate_left(15).wrapping_mul(C1);
        h1 ^= k1;
        h1 = h1
            .rotate_left(19)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(1_444_728_091);
        k2 = k2.wrapping_mul(C1).rotate_left(17).wrapping_mul(C2);
        h2 ^= k2;
        h2 = h2
            .rotate_left(13)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(197_830_471);
        index += 8;
    }
    let tail = length - index;
    if tail > 0 {
        let k1 = read_u32(&data[index..]);
        h1 ^= k1.wrapping_mul(C2).rotate_left(15).wrapping_mul(C1);
        if tail > 4 {
            let k2 = read_u32(&data[index + 4..]);
            h2 ^= k2.wrapping_mul(C1).rotate_left(17).wrapping_mul(C2);
        }
    }
    h1 ^= length as u32;
    h2 ^= length as u32;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (u64::from(h2) << 32) | u64::from(h1)
}

fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_string_matches_published_arm_values() {
        assert_eq!(unique_string(&["test"]), "rbgf3xv4ufgzg");
        assert_eq!(unique_string(&["hello", "world"]), "a7wkljktk6wne");
        assert_eq!(unique_string(&["abc"]), "cgtzqvhu4i23s");
        assert_eq!(
            unique_string(&[
                "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"
            ]),
            "bmg7c6xu4tw46"
        );
        assert_eq!(unique_string(&["foo", "bar", "baz"]), "xzi4ioaxtmth4");
    }

    #[test]
    fn guid_is_a_v5_uuid_and_deterministic() {
        let a = guid(&["a", "b"]);
        assert_eq!(a, guid(&["a-b"]));
        assert_ne!(a, guid(&["a", "c"]));
        let parsed = Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 5);
        // The same values as Python's uuid.uuid5 in ARM's namespace, which public
        // tooling uses to predict the role assignment names Bicep/ARM generate.
        assert_eq!(a, "2d796349-8c7e-55ec-9624-54ece82ed031");
        assert_eq!(
            guid(&[
                "/subscriptions/00000000-0000-0000-0000-000000000000",
                "acdd72a7-3385-48ef-bd42-f606fba81ae7"
            ]),
            "106d16b2-dc84-55ec-ae85-b9af46d6569a"
        );
    }
}
