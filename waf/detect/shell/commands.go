package shell

// The command names a resolved command word is compared with. A bounded
// list is right here because it is consulted only for the word in command
// position of a parsed command line, never searched for in prose.

type cmdKind uint8

const (
	cmdUnknown cmdKind = iota
	// cmdWordy: real commands that are also everyday English words; run
	// bare after a separator they are as likely prose ("…; yes").
	cmdWordy
	cmdKnown
	// cmdInterp: shells and interpreters; data piped into them runs.
	cmdInterp
	// cmdNet: fetchers and network tools.
	cmdNet
)

var commands = map[string]cmdKind{
	// information gathering
	"id": cmdKnown, "whoami": cmdKnown, "uname": cmdKnown, "hostname": cmdKnown, "ifconfig": cmdKnown,
	"ipconfig": cmdKnown, "netstat": cmdKnown, "ss": cmdKnown, "ps": cmdKnown, "pwd": cmdKnown, "w": cmdWordy,
	"who": cmdWordy, "last": cmdWordy, "groups": cmdWordy, "env": cmdKnown, "printenv": cmdKnown, "systeminfo": cmdKnown,
	"tasklist": cmdKnown, "taskkill": cmdKnown, "ver": cmdKnown, "arp": cmdKnown, "route": cmdWordy, "lsof": cmdKnown,
	"df": cmdKnown, "du": cmdKnown, "free": cmdWordy, "top": cmdWordy, "uptime": cmdKnown, "lscpu": cmdKnown, "getent": cmdKnown,
	// files
	"cat": cmdKnown, "tac": cmdKnown, "ls": cmdKnown, "dir": cmdKnown, "head": cmdWordy, "tail": cmdWordy, "more": cmdWordy,
	"less": cmdWordy, "nl": cmdKnown, "od": cmdKnown, "xxd": cmdKnown, "hexdump": cmdKnown, "strings": cmdKnown,
	"grep": cmdKnown, "egrep": cmdKnown, "fgrep": cmdKnown, "find": cmdWordy, "locate": cmdKnown, "which": cmdWordy,
	"whereis": cmdKnown, "file": cmdWordy, "stat": cmdKnown, "touch": cmdWordy, "mkdir": cmdKnown, "rmdir": cmdKnown,
	"rm": cmdKnown, "cp": cmdKnown, "mv": cmdKnown, "ln": cmdKnown, "chmod": cmdKnown, "chown": cmdKnown, "chattr": cmdKnown,
	"dd": cmdKnown, "tee": cmdKnown, "tar": cmdKnown, "zip": cmdWordy, "unzip": cmdKnown, "gzip": cmdKnown,
	"base64": cmdKnown, "base32": cmdKnown, "sort": cmdWordy, "uniq": cmdKnown, "cut": cmdWordy, "tr": cmdKnown, "wc": cmdKnown,
	"awk": cmdInterp, "gawk": cmdInterp, "sed": cmdKnown, "xargs": cmdKnown, "vi": cmdKnown, "vim": cmdKnown,
	"nano": cmdKnown, "type": cmdWordy, "copy": cmdWordy, "del": cmdKnown, "move": cmdWordy, "ren": cmdKnown,
	"attrib": cmdKnown, "icacls": cmdKnown, "mkfifo": cmdKnown, "mknod": cmdKnown, "shred": cmdKnown, "truncate": cmdKnown,
	"md5sum": cmdKnown, "sha1sum": cmdKnown, "sha256sum": cmdKnown, "diff": cmdKnown, "readlink": cmdKnown, "realpath": cmdKnown,
	// output and control
	"echo": cmdKnown, "printf": cmdKnown, "sleep": cmdWordy, "timeout": cmdWordy, "ping": cmdKnown, "kill": cmdWordy,
	"pkill": cmdKnown, "killall": cmdKnown, "nohup": cmdKnown, "sudo": cmdKnown, "su": cmdKnown, "doas": cmdKnown,
	"eval": cmdInterp, "exec": cmdInterp, "source": cmdWordy, "expr": cmdKnown, "seq": cmdKnown, "yes": cmdWordy,
	"true": cmdWordy, "false": cmdWordy, "test": cmdWordy, "export": cmdWordy, "set": cmdWordy, "unset": cmdKnown,
	"crontab": cmdKnown, "at": cmdWordy, "reboot": cmdKnown, "shutdown": cmdKnown, "halt": cmdWordy, "poweroff": cmdKnown,
	"useradd": cmdKnown, "userdel": cmdKnown, "usermod": cmdKnown, "passwd": cmdKnown, "chpasswd": cmdKnown,
	"iptables": cmdKnown, "systemctl": cmdKnown, "service": cmdWordy, "mount": cmdWordy, "umount": cmdKnown,
	"history": cmdWordy, "time": cmdWordy, "start": cmdWordy, "call": cmdWordy, "net": cmdWordy,
	"reg": cmdKnown, "wmic": cmdKnown, "schtasks": cmdKnown, "sc": cmdKnown, "whoami.exe": cmdKnown,
	"rundll32": cmdInterp, "regsvr32": cmdInterp, "mshta": cmdInterp, "cscript": cmdInterp, "wscript": cmdInterp,
	"msiexec": cmdKnown, "certutil": cmdNet, "bitsadmin": cmdNet, "nslookup": cmdNet, "dig": cmdNet, "host": cmdWordy,
	"traceroute": cmdNet, "tracert": cmdNet, "finger": cmdWordy,
	// network
	"wget": cmdNet, "curl": cmdNet, "nc": cmdNet, "ncat": cmdNet, "netcat": cmdNet, "socat": cmdNet, "telnet": cmdNet,
	"ssh": cmdNet, "scp": cmdNet, "sftp": cmdNet, "ftp": cmdNet, "tftp": cmdNet, "rsync": cmdNet, "nmap": cmdNet,
	"openssl": cmdNet, "fetch": cmdWordy, "lwp-download": cmdNet, "aria2c": cmdNet,
	"invoke-webrequest": cmdNet, "iwr": cmdNet, "invoke-restmethod": cmdNet, "irm": cmdNet, "start-bitstransfer": cmdNet,
	// shells and interpreters
	"sh": cmdInterp, "bash": cmdInterp, "zsh": cmdInterp, "ksh": cmdInterp, "dash": cmdInterp, "csh": cmdInterp,
	"tcsh": cmdInterp, "fish": cmdInterp, "ash": cmdInterp, "busybox": cmdInterp, "python": cmdInterp,
	"python2": cmdInterp, "python3": cmdInterp, "perl": cmdInterp, "ruby": cmdInterp, "php": cmdInterp, "node": cmdInterp,
	"nodejs": cmdInterp, "lua": cmdInterp, "tclsh": cmdInterp, "expect": cmdInterp, "java": cmdInterp,
	"jrunscript": cmdInterp, "gcc": cmdKnown, "cc": cmdKnown, "make": cmdWordy, "xterm": cmdInterp,
	"powershell": cmdInterp, "powershell.exe": cmdInterp, "pwsh": cmdInterp, "cmd": cmdInterp, "cmd.exe": cmdInterp,
	"command": cmdWordy, "iex": cmdInterp, "invoke-expression": cmdInterp, "start-process": cmdInterp,
	"new-object": cmdKnown, "get-content": cmdKnown, "gc": cmdKnown, "invoke-command": cmdInterp,
	"iwmi": cmdInterp, "invoke-wmimethod": cmdInterp, "gwmi": cmdKnown, "get-wmiobject": cmdKnown,
	"invoke-item": cmdInterp, "set-content": cmdKnown, "out-file": cmdKnown, "add-type": cmdInterp,
	// development and administration tools
	"gdb": cmdInterp, "perf": cmdKnown, "c89": cmdKnown, "c99": cmdKnown, "g++": cmdKnown, "clang": cmdKnown,
	"flock": cmdKnown, "cpulimit": cmdKnown, "pip": cmdKnown, "pip3": cmdKnown, "npm": cmdKnown, "npx": cmdInterp,
	"yarn": cmdKnown, "gem": cmdKnown, "cargo": cmdKnown, "go": cmdWordy, "git": cmdKnown, "docker": cmdKnown,
	"kubectl": cmdKnown, "ansible": cmdKnown, "ansible-playbook": cmdKnown, "ansible-console": cmdInterp,
	"ansible-pull": cmdKnown, "ansible-config": cmdKnown, "ansible-inventory": cmdKnown, "chef-client": cmdKnown,
	"chef-shell": cmdInterp, "puppet": cmdKnown, "salt": cmdWordy, "terraform": cmdKnown, "vagrant": cmdKnown,
	"date": cmdWordy, "cal": cmdKnown, "fold": cmdWordy, "rev": cmdKnown, "paste": cmdWordy, "join": cmdWordy,
	"split": cmdWordy, "comm": cmdKnown, "column": cmdWordy, "iconv": cmdKnown, "lsblk": cmdKnown, "lspci": cmdKnown,
	"lsusb": cmdKnown, "lsmod": cmdKnown, "insmod": cmdKnown, "modprobe": cmdKnown, "dmesg": cmdKnown,
	"journalctl": cmdKnown, "ip": cmdKnown, "nmcli": cmdKnown, "iwconfig": cmdKnown, "tcpdump": cmdKnown,
	"whois": cmdNet, "sqlite3": cmdInterp, "mysql": cmdInterp, "psql": cmdInterp, "redis-cli": cmdInterp,
	"mongo": cmdInterp, "mongosh": cmdInterp, "sshpass": cmdNet, "screen": cmdInterp, "tmux": cmdInterp,
	"script": cmdWordy, "rc": cmdInterp, "ll": cmdKnown, "cd": cmdKnown, "pushd": cmdKnown, "popd": cmdKnown,
	"rlwrap": cmdInterp, "unshare": cmdInterp, "chroot": cmdInterp, "nsenter": cmdInterp, "capsh": cmdInterp,
	"pkexec": cmdInterp, "runuser": cmdInterp, "sg": cmdKnown, "tclsh8.6": cmdInterp, "php7": cmdInterp,
	"php8": cmdInterp, "python3.10": cmdInterp, "python3.11": cmdInterp, "python3.12": cmdInterp, "perl5": cmdInterp,
	"zstdcat": cmdKnown, "zstd": cmdKnown, "lz4": cmdKnown, "7z": cmdKnown, "unrar": cmdKnown, "cpio": cmdKnown,
	"gunzip": cmdKnown, "zcat": cmdKnown, "unxz": cmdKnown, "xz": cmdKnown, "bzip2": cmdKnown, "bunzip2": cmdKnown,
	".shell": cmdInterp, ".system": cmdInterp, "alias": cmdWordy,
	"bcdboot": cmdKnown, "bcdedit": cmdKnown, "vssadmin": cmdKnown, "wevtutil": cmdKnown, "forfiles": cmdInterp,
}

// lookupCmd classifies a resolved command word: its base name (after the
// last / or \), case-insensitively for Windows names.
func lookupCmd(name string) cmdKind {
	if i := lastSep(name); i >= 0 {
		name = name[i+1:]
	}
	if name == "" || len(name) > 32 {
		return cmdUnknown
	}
	if k, ok := commands[name]; ok {
		return k
	}
	if wrappers[name] {
		// strace sh -c …, flock / whoami: a wrapper runs the command
		// after it, so it stands in command position like one.
		switch name {
		case "watch", "nice", "command":
			return cmdWordy
		}
		return cmdKnown
	}
	// Unix command names are case-sensitive ("Bash", "SET ROLE …" in
	// prose are not commands); cmd.exe and PowerShell names are not.
	var buf [32]byte
	n := copy(buf[:], name)
	for i := 0; i < n; i++ {
		if 'A' <= buf[i] && buf[i] <= 'Z' {
			buf[i] += 'a' - 'A'
		}
	}
	if n > 4 && string(buf[n-4:n]) == ".exe" {
		n -= 4
	}
	if winCommands[string(buf[:n])] {
		return commands[string(buf[:n])]
	}
	return cmdUnknown
}

// winCommands are matched case-insensitively.
var winCommands = map[string]bool{
	"cmd": true, "powershell": true, "pwsh": true, "certutil": true, "bitsadmin": true, "whoami": true,
	"ipconfig": true, "systeminfo": true, "tasklist": true, "taskkill": true, "net": true, "type": true,
	"dir": true, "del": true, "copy": true, "ping": true, "nslookup": true, "reg": true, "wmic": true,
	"schtasks": true, "rundll32": true, "regsvr32": true, "mshta": true, "cscript": true, "wscript": true,
	"msiexec": true, "iex": true, "invoke-expression": true, "invoke-webrequest": true, "iwr": true,
	"invoke-restmethod": true, "irm": true, "start-process": true, "new-object": true, "get-content": true,
	"iwmi": true, "invoke-wmimethod": true, "gwmi": true, "get-wmiobject": true, "invoke-item": true,
	"set-content": true, "out-file": true, "add-type": true, "start-bitstransfer": true, "invoke-command": true,
	"bcdboot": true, "bcdedit": true, "vssadmin": true, "wevtutil": true, "forfiles": true, "tracert": true,
	"attrib": true, "icacls": true, "ver": true, "hostname": true, "netstat": true, "arp": true, "route": true,
	"curl": true, "tftp": true, "ftp": true, "echo": true, "start": true, "call": true, "set": true,
}

func lastSep(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' || s[i] == '\\' {
			return i
		}
	}
	return -1
}

// wrappers run their first non-option argument as a command.
var wrappers = map[string]bool{
	"sudo": true, "doas": true, "nohup": true, "env": true, "exec": true, "command": true, "busybox": true,
	"timeout": true, "nice": true, "setsid": true, "stdbuf": true, "strace": true, "time": true, "xargs": true,
	".shell": true, ".system": true, "watch": true, "flock": true, "cpulimit": true, "chroot": true,
	"unshare": true, "nsenter": true, "runuser": true, "pkexec": true, "rlwrap": true,
}

// shellVars name the shell or command interpreter ($SHELL -c …,
// %COMSPEC% /c …).
var shellVars = map[string]string{"SHELL": "sh", "BASH": "bash", "COMSPEC": "cmd", "ZSH_NAME": "zsh"}

// binDirs are where a globbed command path (/???/c?t) is resolved.
var binDirs = [...]string{"/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/", "/usr/local/bin/"}

// sensitive are path fragments that mark an argument as an attack target.
var sensitive = [...]string{
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts", "/etc/issue", "/etc/sudoers", "/proc/self", "/proc/version",
	"/dev/tcp/", "/dev/udp/", ".ssh/", "id_rsa", "authorized_keys", ".bash_history", "/var/log/", "/root/",
	"win.ini", "boot.ini", "system32", "/bin/sh", "/bin/bash", "/tmp/", "/dev/shm", "/var/www", "/srv/www", "inetpub", "wwwroot", "$ifs", "${ifs}",
}

// actsBare: commands that do their work with no arguments and no input
// (report on the system, or stop it), so run bare they are an attack on
// their own, unlike a filter that only reads what is piped into it.
var actsBare = map[string]bool{
	"id": true, "whoami": true, "uname": true, "hostname": true, "ifconfig": true, "ipconfig": true,
	"netstat": true, "ss": true, "ps": true, "pwd": true, "env": true, "printenv": true, "systeminfo": true,
	"tasklist": true, "ver": true, "arp": true, "lsof": true, "df": true, "uptime": true, "lscpu": true,
	"ls": true, "dir": true, "history": true, "reboot": true, "shutdown": true, "halt": true, "poweroff": true,
}
