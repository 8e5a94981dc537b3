//! The sandbox image: the container that holds a task's network namespace so the task's
//! containers can join it and come and go independently. No registry is reachable, so
//! there is no `pause` image to pull: berth writes a tiny static ELF executable here,
//! byte by byte, packs it alone in a tar and `docker import`s it.

use crate::error::RuntimeError;

/// Repository of the sandbox image; the tag is a hash of the executable.
pub const SANDBOX_REPOSITORY: &str = "berth/sandbox";

/// Where the executable is loaded. Fixed (no PIE), so the code may hold absolute addresses.
const LOAD_ADDRESS: u64 = 0x40_0000;
const ELF_HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
/// The code starts right after the one program header.
const CODE_OFFSET: usize = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const SA_RESTORER: u64 = 0x0400_0000;

/// The `/pause` executable for the given `std::env::consts::ARCH`.
pub fn pause_executable(arch: &str) -> Result<Vec<u8>, RuntimeError> {
    match arch {
        "x86_64" => Ok(elf(EM_X86_64, &x86_64_code())),
        "aarch64" => Ok(elf(EM_AARCH64, &aarch64_code())),
        other => Err(RuntimeError::Engine(format!(
            "cannot build the sandbox image for architecture {other}: \
             only x86_64 and aarch64 are supported"
        ))),
    }
}

/// x86_64: exit 0 on SIGTERM and SIGINT, otherwise `pause()` forever.
///
/// The handler matters because the sandbox is PID 1 of its container, and the kernel
/// ignores signals with the default action for PID 1: without a handler `docker stop`
/// would always wait out its timeout.
fn x86_64_code() -> Vec<u8> {
    // Offsets inside the code, checked against `as` + `objdump` output.
    const HANDLER: usize = 0x3b;
    const CODE_LEN: usize = 0x44;
    // struct sigaction (kernel layout) follows the code, 8-byte aligned.
    const ACTION: usize = CODE_LEN.div_ceil(8) * 8;
    // `mov esi, imm32` takes a 32-bit address; the fixed load address keeps it small.
    const ACTION_ADDRESS: u64 = LOAD_ADDRESS + (CODE_OFFSET + ACTION) as u64;
    const _: () = assert!(ACTION_ADDRESS <= u32::MAX as u64);
    let action_address = ACTION_ADDRESS as u32;
    let handler_address = LOAD_ADDRESS + (CODE_OFFSET + HANDLER) as u64;

    let mut code = Vec::with_capacity(ACTION + 32);
    for signal in [15u8 /* SIGTERM */, 2 /* SIGINT */] {
        code.extend_from_slice(&[0xb8, 13, 0, 0, 0]); // mov eax, 13 (rt_sigaction)
        code.extend_from_slice(&[0xbf, signal, 0, 0, 0]); // mov edi, signal
        code.push(0xbe); // mov esi, &action
        code.extend_from_slice(&action_address.to_le_bytes());
        code.extend_from_slice(&[0x31, 0xd2]); // xor edx, edx (no old action)
        code.extend_from_slice(&[0x41, 0xba, 8, 0, 0, 0]); // mov r10d, 8 (sigset size)
        code.extend_from_slice(&[0x0f, 0x05]); // syscall
    }
    // loop: pause(); jmp loop
    code.extend_from_slice(&[0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]);
    debug_assert_eq!(code.len(), HANDLER);
    // handler: exit_group(0); it never returns, so no sa_restorer is needed.
    code.extend_from_slice(&[0xb8, 231, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
    debug_assert_eq!(code.len(), CODE_LEN);
    code.resize(ACTION, 0);
    code.extend_from_slice(&handler_address.to_le_bytes()); // sa_handler
                                                            // x86_64 kernels refuse to deliver a signal (SIGSEGV instead) unless SA_RESTORER
                                                            // names a return trampoline; the handler never returns, so any address does.
    code.extend_from_slice(&SA_RESTORER.to_le_bytes()); // sa_flags
    code.extend_from_slice(&handler_address.to_le_bytes()); // sa_restorer
    code.extend_from_slice(&0u64.to_le_bytes()); // sa_mask
    code
}

/// aarch64: `ppoll(NULL, 0, NULL, NULL)` forever (arm64 has no `pause` syscall). No
/// signal handler: berth removes sandboxes with force, so SIGKILL ends it.
fn aarch64_code() -> Vec<u8> {
    let instructions: [u32; 7] = [
        0xd280_0928, // mov x8, #73 (ppoll)
        0xd280_0000, // mov x0, #0
        0xd280_0001, // mov x1, #0
        0xd280_0002, // mov x2, #0
        0xd280_0003, // mov x3, #0
        0xd400_0001, // svc #0
        0x17ff_fffa, // b -6 instructions (back to the first)
    ];
    instructions.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// A minimal ELF64 executable: the header, one PT_LOAD program header mapping the whole
/// file read+execute at `LOAD_ADDRESS`, then `code`, whose first byte is the entry point.
fn elf(machine: u16, code: &[u8]) -> Vec<u8> {
    let file_size = (CODE_OFFSET + code.len()) as u64;
    let mut out = Vec::with_capacity(CODE_OFFSET + code.len());
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI, padding
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes()); // e_machine
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&(LOAD_ADDRESS + CODE_OFFSET as u64).to_le_bytes()); // e_entry
    out.extend_from_slice(&(ELF_HEADER_SIZE as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(ELF_HEADER_SIZE as u16).to_le_bytes()); // e_ehsize
    out.extend_from_slice(&(PROGRAM_HEADER_SIZE as u16).to_le_bytes()); // e_phentsize
    out.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    debug_assert_eq!(out.len(), ELF_HEADER_SIZE);
    out.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R + X
    out.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    out.extend_from_slice(&LOAD_ADDRESS.to_le_bytes()); // p_vaddr
    out.extend_from_slice(&LOAD_ADDRESS.to_le_bytes()); // p_paddr
    out.extend_from_slice(&file_size.to_le_bytes()); // p_filesz
    out.extend_from_slice(&file_size.to_le_bytes()); // p_memsz
    out.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    debug_assert_eq!(out.len(), CODE_OFFSET);
    out.extend_from_slice(code);
    out
}

/// A tar archive holding only `/pause` (root-owned, 0755, mtime 0 so the archive, and
/// therefore its hash, is the same on every build).
pub fn sandbox_rootfs_tar(executable: &[u8]) -> Result<Vec<u8>, RuntimeError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(executable.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "pause", executable)
        .and_then(|()| builder.into_inner())
        .map_err(|error| {
            RuntimeError::Engine(format!("building the sandbox image archive: {error}"))
        })
}

/// The sandbox image reference: the tag is a hash of the executable, so a berth that
/// changes the executable builds a new image instead of reusing a stale one.
pub fn sandbox_image_reference(executable: &[u8]) -> String {
    format!("{SANDBOX_REPOSITORY}:{:016x}", fnv1a64(executable))
}

/// FNV-1a: stable across Rust versions (unlike `DefaultHasher`), and no dependency.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([bytes[at], bytes[at + 1]])
    }
    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        let mut buffer = [0u8; 8];
        buffer.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(buffer)
    }

    #[test]
    fn elf_header_and_program_header_are_consistent() {
        for (arch, machine) in [("x86_64", EM_X86_64), ("aarch64", EM_AARCH64)] {
            let bytes = pause_executable(arch).unwrap();
            assert_eq!(&bytes[..4], b"\x7fELF");
            assert_eq!(bytes[4], 2, "64-bit");
            assert_eq!(bytes[5], 1, "little endian");
            assert_eq!(u16_at(&bytes, 16), 2, "ET_EXEC");
            assert_eq!(u16_at(&bytes, 18), machine);
            assert_eq!(u64_at(&bytes, 24), LOAD_ADDRESS + CODE_OFFSET as u64);
            assert_eq!(u64_at(&bytes, 32), 64, "program headers follow the header");
            assert_eq!(u16_at(&bytes, 56), 1, "one program header");
            // PT_LOAD covering the whole file
            assert_eq!(u16_at(&bytes, 64), 1);
            assert_eq!(u64_at(&bytes, 64 + 32), bytes.len() as u64, "p_filesz");
            assert_eq!(u64_at(&bytes, 64 + 40), bytes.len() as u64, "p_memsz");
            assert!(bytes.len() < 256, "tiny: {} bytes", bytes.len());
        }
    }

    #[test]
    fn x86_64_sigaction_points_at_the_handler() {
        let bytes = pause_executable("x86_64").unwrap();
        let action_offset = CODE_OFFSET + 72;
        let handler = u64_at(&bytes, action_offset);
        let handler_offset = (handler - LOAD_ADDRESS) as usize;
        // mov eax, 231 (exit_group)
        assert_eq!(
            &bytes[handler_offset..handler_offset + 5],
            &[0xb8, 231, 0, 0, 0]
        );
        // both rt_sigaction calls pass the action's address
        let action_address = (LOAD_ADDRESS as usize + action_offset) as u32;
        for call in [0usize, 0x19] {
            let at = CODE_OFFSET + call + 0x0b;
            assert_eq!(&bytes[at..at + 4], &action_address.to_le_bytes());
        }
    }

    #[test]
    fn unsupported_architecture_is_a_clear_error() {
        let error = pause_executable("riscv64").unwrap_err();
        assert!(error.message().contains("riscv64"), "{error}");
    }

    #[test]
    fn rootfs_tar_holds_only_an_executable_pause() {
        let executable = pause_executable("x86_64").unwrap();
        let tar_bytes = sandbox_rootfs_tar(&executable).unwrap();
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![("pause".to_string(), 0o755, executable.len() as u64)]
        );
        assert_eq!(
            sandbox_rootfs_tar(&executable).unwrap(),
            tar_bytes,
            "deterministic"
        );
    }

    #[test]
    fn image_reference_is_stable_and_depends_on_the_bytes() {
        let x86 = pause_executable("x86_64").unwrap();
        let arm = pause_executable("aarch64").unwrap();
        let reference = sandbox_image_reference(&x86);
        assert!(reference.starts_with("berth/sandbox:"));
        assert_eq!(reference.len(), "berth/sandbox:".len() + 16);
        assert_eq!(reference, sandbox_image_reference(&x86));
        assert_ne!(reference, sandbox_image_reference(&arm));
    }

    /// The bytes really run: spawn them on this host, still alive after 200 ms (pausing,
    /// not crashed), and SIGTERM makes them exit 0 through the handler.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn x86_64_executable_runs_pauses_and_exits_zero_on_sigterm() {
        use std::os::unix::fs::PermissionsExt;
        let executable = pause_executable("x86_64").unwrap();
        let dir = std::env::temp_dir().join(format!("berth-pause-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pause");
        std::fs::write(&path, &executable).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut child = std::process::Command::new(&path).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let still_running = child.try_wait().unwrap().is_none();
        // SIGTERM through the kill(1) utility: the crate forbids unsafe, so no libc::kill.
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            still_running,
            "the pause executable exited on its own: {status:?}"
        );
        assert!(killed.success());
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after SIGTERM: {status:?}"
        );
    }
}
