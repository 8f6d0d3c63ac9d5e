;; FastCDC's hot loop (fastcdc.ts `scan`) in WebAssembly: the same gear hash
;; and the same cut rule, over memory shared with JavaScript. The gear table
;; (256 int32, little-endian) sits at address 0; the bytes being cut live
;; elsewhere in the same memory. Returns the chunk length, as `scan` does.
;; Compiled by scripts/build-wasm.ts into gear-scan-wasm.ts; a test checks that
;; the two agree and that the cut points equal the JavaScript ones.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "scan")
    (param $start i32) (param $from i32) (param $normal i32) (param $limit i32)
    (param $maskS i32) (param $maskL i32) (result i32)
    (local $h i32) (local $i i32)
    (local.set $i (local.get $from))
    ;; Up to `normal` (the chunk would be at most avg long): the small mask.
    (block $small
      (br_if $small (i32.ge_u (local.get $i) (local.get $normal)))
      (loop $next
        (local.set $h
          (i32.add
            (i32.shl (local.get $h) (i32.const 1))
            (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskS)))
          (then (return (i32.sub (i32.add (local.get $i) (i32.const 1)) (local.get $start)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $normal)))))
    ;; Then up to `limit`: the large mask.
    (block $large
      (br_if $large (i32.ge_u (local.get $i) (local.get $limit)))
      (loop $next
        (local.set $h
          (i32.add
            (i32.shl (local.get $h) (i32.const 1))
            (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskL)))
          (then (return (i32.sub (i32.add (local.get $i) (i32.const 1)) (local.get $start)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $limit)))))
    (i32.sub (local.get $limit) (local.get $start))))
