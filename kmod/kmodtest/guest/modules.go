package guest

import "context"

// Modules returns the named modules of an unpacked kernel (Kernel.ModulesDir)
// and their dependencies, uncompressed and in load order, as initramfs
// entries for a script guest: names are "NN-name.ko", to be insmod-ed in
// the order given. Modules built into the kernel are left out.
func Modules(ctx context.Context, modulesDir string, names ...string) (order []string, files map[string][]byte, err error) {
	mods, err := resolveModules(ctx, modulesDir, names)
	if err != nil {
		return nil, nil, err
	}
	files = map[string][]byte{}
	for i, m := range mods {
		n := string(rune('0'+i/10)) + string(rune('0'+i%10)) + "-" + m.name + ".ko"
		order = append(order, n)
		files[n] = m.data
	}
	return order, files, nil
}
